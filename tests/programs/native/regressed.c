/* Two builds of one program for `leaksift diff` of native traces: `regressed N` loses N blocks
 * of 100 bytes in remember(), keeps a 4 KiB buffer in cache_page() whatever N, and allocates and
 * frees N temporary 32-byte blocks in scratch(). Run with 1 and with 5: only remember() and
 * scratch() change. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *page;
static char *volatile last;

__attribute__((noinline)) static void remember(int i) {
    char *block = malloc(100);
    memset(block, i, 100);
    last = block; /* overwritten by the next call, cleared at the end: definitely lost */
}

__attribute__((noinline)) static void cache_page(void) {
    page = malloc(4096);
    memset(page, 1, 4096);
}

__attribute__((noinline)) static int scratch(int i) {
    volatile char *tmp = malloc(32);
    tmp[0] = (char)i;
    int value = tmp[0];
    free((void *)tmp);
    return value;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 1;
    int sum = 0;
    cache_page();
    for (int i = 0; i < n; i++) {
        remember(i);
        sum += scratch(i);
    }
    printf("%d %d\n", n, sum + page[0] + last[0]);
    last = NULL;
    return 0;
}
