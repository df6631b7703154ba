/* Benchmark for bench/exit_scan.sh: a heap of many small blocks left for the exit scan. Builds
 * a singly linked list of NODES 48-byte nodes (default 2000000), cuts it in the middle and
 * returns with no pointer to either half: 2 blocks definitely lost, the rest indirectly lost.
 * Usage: exit_scan [NODES] */
#include <stdio.h>
#include <stdlib.h>

struct node {
    struct node *next;
    char pad[40];
};

int main(int argc, char **argv) {
    long nodes = argc > 1 ? atol(argv[1]) : 2000000;
    struct node *head = NULL;
    for (long i = 0; i < nodes; i++) {
        struct node *n = calloc(1, sizeof *n);
        if (!n) return 1;
        n->next = head;
        head = n;
    }
    struct node *p = head;
    for (long i = 0; i < nodes / 2 - 1; i++) p = p->next;
    p->next = NULL;
    printf("%p\n", (void *)head);
    return 0;
}
