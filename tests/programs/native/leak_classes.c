/* One block of each memcheck leak class, with distinct sizes so counts can't coincide:
 * definitely lost 100 B (a dropped pointer) + 48 B (a struct owning a buffer),
 * indirectly lost 200 B (the buffer owned by the lost struct),
 * possibly lost 64 B (reachable only through an interior pointer),
 * still reachable 32 B (held by a global). Frees a few blocks so those must not count.
 * Built -O0 with and without -fno-omit-frame-pointer by crates/leaksift/tests/report.rs. */
#include <stdlib.h>
#include <string.h>

struct owner {
    char *buffer;
    size_t length;
    char tag[32];
};

void *held_by_global;
char *interior_pointer;

__attribute__((noinline)) static void lose_block(void) {
    char *block = malloc(100);
    memset(block, 1, 100);
}

__attribute__((noinline)) static void lose_owner(void) {
    struct owner *owner = malloc(sizeof *owner);
    owner->length = 200;
    owner->buffer = malloc(owner->length);
    memset(owner->buffer, 2, owner->length);
}

__attribute__((noinline)) static void keep_interior(void) {
    char *block = malloc(64);
    interior_pointer = block + 16;
}

__attribute__((noinline)) static void keep_global(void) {
    held_by_global = malloc(32);
}

__attribute__((noinline)) static void churn(void) {
    for (int i = 0; i < 10; i++) {
        void *temporary = malloc(16 + i);
        free(temporary);
    }
    void *grown = realloc(NULL, 10);
    grown = realloc(grown, 1000);
    free(grown);
}

/* Overwrites the dead stack frames below main's, so no stale copy of a lost pointer remains
 * where a scan of the live stack could see it. */
__attribute__((noinline)) static void scrub_stack(void) {
    volatile char pad[8192];
    memset((char *)pad, 0, sizeof pad);
}

int main(void) {
    lose_block();
    lose_owner();
    keep_interior();
    keep_global();
    churn();
    scrub_stack();
    return 0;
}
