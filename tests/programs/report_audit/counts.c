/* report_audit: allocation counts, temporaries, peak, realloc chains and the aligned/zeroed
 * allocators, with figures known in advance (see crates/leaksift/tests/report_oracle.rs).
 *
 *  - make_node(): 3 callers (via_a x10, via_b x20, via_c x30) of 48-byte blocks, all freed at
 *    the end in one sweep (60 allocations from one call site, 3 stacks).
 *  - temporaries(): 25 malloc(100)/free pairs with nothing in between: 25 temporaries.
 *  - peak(): a 1 MiB block, then an 8-byte one, both freed: the peak is 1048576 + 8 + the 60
 *    nodes (2880) + the realloc chain's block (4096) + the calloc/aligned blocks (1768) = 1057328.
 *  - realloc chain: malloc(16) -> realloc 64 -> realloc 1024 -> realloc 4096 (one live block).
 *  - calloc(10, 100), aligned_alloc(64, 256), posix_memalign(4096, 512): live until exit, still
 *    reachable from globals, like the realloc chain's 4096 bytes (5864 bytes in 4 blocks).
 *  - recurse(depth 300): one 32-byte block per level, leaked (definitely lost: no pointer kept),
 *    9600 bytes in 300 blocks; stacks deeper than the recorder's frame limit.
 */
#include <stdlib.h>
#include <string.h>

static void *nodes[60];
static int node_count;

__attribute__((noinline)) void *make_node(void) { return malloc(48); }
__attribute__((noinline)) void via_a(void) { nodes[node_count++] = make_node(); }
__attribute__((noinline)) void via_b(void) { nodes[node_count++] = make_node(); }
__attribute__((noinline)) void via_c(void) { nodes[node_count++] = make_node(); }

__attribute__((noinline)) void temporaries(void) {
    for (int i = 0; i < 25; i++) {
        char *volatile p = malloc(100);
        p[0] = 1;
        free(p);
    }
}

__attribute__((noinline)) void peak(void) {
    char *volatile big = malloc(1 << 20);
    memset(big, 1, 1 << 20);
    /* one allocation in between keeps the big block from being a temporary */
    char *volatile small = malloc(8);
    free(big);
    free(small);
}

/* volatile: the compiler may not drop these stores, nor the allocations whose results they keep */
static char *volatile chain;
static char *volatile zeroed;
static void *volatile aligned;
static void *volatile memaligned;

__attribute__((noinline)) void realloc_chain(void) {
    chain = malloc(16);
    chain = realloc(chain, 64);
    chain = realloc(chain, 1024);
    chain = realloc(chain, 4096);
}

__attribute__((noinline)) void odd_allocators(void) {
    zeroed = calloc(10, 100);
    aligned = aligned_alloc(64, 256);
    void *block;
    if (posix_memalign(&block, 4096, 512) != 0) abort();
    memaligned = block;
}

__attribute__((noinline)) void recurse(int depth) {
    void *volatile leaked = malloc(32);
    (void)leaked;
    if (depth > 1) recurse(depth - 1);
    __asm__ volatile("" ::: "memory");
}

int main(void) {
    for (int i = 0; i < 10; i++) via_a();
    for (int i = 0; i < 20; i++) via_b();
    for (int i = 0; i < 30; i++) via_c();
    temporaries();
    realloc_chain();
    odd_allocators();
    peak();
    recurse(300);
    for (int i = 0; i < node_count; i++) free(nodes[i]);
    return 0;
}
