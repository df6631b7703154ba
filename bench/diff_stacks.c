// Allocates from many distinct call stacks, for bench/diff_stacks.sh.
//
//   diff_stacks N DEPTH K [BASE]
//
// Iteration i (0 <= i < N) allocates one block from a recursion DEPTH calls deep whose call site
// at each level is one of two, chosen by a bit of i + BASE: up to 2^DEPTH distinct stacks made
// of a handful of distinct addresses. Every K-th block is leaked, the others freed at once.
// Built with frame pointers and -O0 so that the recursion is not folded.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long every;
static long allocations, leaked;

__attribute__((noinline)) int descend(unsigned long bits, int depth, long i) {
    if (depth == 0) {
        size_t size = 8 + (i & 63);
        char *block = malloc(size);
        allocations++;
        memset(block, 0, size);
        if (every && i % every == 0)
            leaked++;
        else
            free(block);
        return 1;
    }
    int r;
    if (bits & 1)
        r = descend(bits >> 1, depth - 1, i) + 1;
    else
        r = descend(bits >> 1, depth - 1, i) + 2;
    return r;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s N DEPTH K [BASE]\n", argv[0]);
        return 2;
    }
    long n = atol(argv[1]);
    int depth = atoi(argv[2]);
    every = atol(argv[3]);
    long base = argc > 4 ? atol(argv[4]) : 0;
    volatile long sink = 0;
    for (long i = 0; i < n; i++)
        sink += descend((unsigned long)(i + base), depth, i);
    fprintf(stderr, "%ld allocations, %ld leaked\n", allocations, leaked);
    return 0;
}
