/* A program linked with another allocator (jemalloc, as a shared library). The tracer's malloc
 * comes first and serves the malloc family from glibc's allocator, so every entry point the
 * program calls must agree with it: malloc_usable_size of a malloc'd block (jemalloc's read a
 * glibc block as its own and crashed), and aligned_alloc then free (jemalloc's aligned_alloc
 * handed out a block that free then gave to glibc). Keeps one 777-byte block; prints "ok". */
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

void *volatile sink;

int main(void) {
    for (int i = 0; i < 100; i++) {
        char *p = malloc(100 + i);
        if (!p || malloc_usable_size(p) < (size_t)(100 + i)) return 2;
        p[99 + i] = 1;
        free(p);
    }
    for (int i = 1; i <= 100; i++) {
        char *p = aligned_alloc(64, 64 * (size_t)i);
        if (!p || ((uintptr_t)p & 63) != 0 || malloc_usable_size(p) < 64 * (size_t)i) return 3;
        p[64 * i - 1] = 1;
        free(p);
    }
    sink = malloc(777);
    puts("ok");
    return 0;
}
