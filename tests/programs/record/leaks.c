/* One block of each memcheck leak class, robust against -O2 allocation elision.
 * Expected: definitely lost 132 bytes in 2 blocks (100 + the 32-byte owner), indirectly lost 48
 * in 1 (owned by the lost owner), possibly lost 64 in 1 (only an interior pointer in a global),
 * still reachable 200 in 1 (a global) plus stdio's buffer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct owner {
    void *child;
    char pad[24];
};

void *volatile sink;
char *interior_only;
void *global_held;

__attribute__((noinline)) void *make(size_t n) {
    void *p = malloc(n);
    memset(p, 0x5a, n);
    sink = p;
    return p;
}

__attribute__((noinline)) void lose_plain(void) { make(100); }

__attribute__((noinline)) void lose_owner(void) {
    struct owner *o = make(sizeof *o);
    o->child = make(48);
}

__attribute__((noinline)) void keep_interior(void) { interior_only = (char *)make(64) + 16; }

__attribute__((noinline)) void keep_global(void) { global_held = make(200); }

int main(int argc, char **argv) {
    (void)argv;
    lose_plain();
    lose_owner();
    keep_interior();
    keep_global();
    for (int i = 1; i < 100; i++) free(make(i));
    sink = NULL;
    puts("leaks done");
    if (argc > 1) {
        /* With an argument, end without exit handlers: the scan must still run. */
        fflush(stdout);
        _exit(0);
    }
    return 0;
}
