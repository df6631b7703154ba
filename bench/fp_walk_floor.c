/* The floor for full-stack allocation tracing with frame pointers, for bench/native_overhead.py.
 *
 * A minimal LD_PRELOAD library: malloc, calloc, realloc and free forward to glibc's __libc_*
 * functions, and each malloc/calloc/realloc walks the frame-pointer chain of its caller into a
 * local array (at most 64 frames, reads bounded by the main thread's stack) and nothing else: no
 * re-entrancy guard, no timestamp, no deduplication, no event, no writer thread. A tool that
 * walks the stack of every allocation does at least this much, so on the frame-pointer variant
 * of bench/native_overhead.c its time is the floor of such tools. (leaksift's replay cache does
 * not walk a repeated stack: it re-reads the same words, independently rather than as a chain of
 * dependent loads, and can come in a little under this floor for its stack part.)
 * Single-threaded programs only (the bound is the main thread's stack).
 *
 * Build: gcc -O2 -fno-omit-frame-pointer -shared -fPIC -o fp_walk_floor.so bench/fp_walk_floor.c
 * Run:   LD_PRELOAD=./fp_walk_floor.so PROGRAM */
#include <stddef.h>
#include <stdint.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_stack_end; /* glibc: the top of the main thread's stack */

#define MAX_FRAMES 64

/* Published so that the walk cannot be optimised away. */
volatile uintptr_t floor_checksum;

/* Walks from the frame of the hook that inlines it: frames[0] is the return address into the
 * allocating function. */
__attribute__((always_inline)) static inline void walk(void) {
    uintptr_t frames[MAX_FRAMES];
    uintptr_t *bp = __builtin_frame_address(0);
    uintptr_t low = (uintptr_t)bp, high = (uintptr_t)__libc_stack_end;
    size_t n = 0;
    while (n < MAX_FRAMES && (uintptr_t)bp >= low && (uintptr_t)bp + 16 <= high && ((uintptr_t)bp & 7) == 0) {
        uintptr_t ra = bp[1];
        if (ra == 0) break;
        frames[n++] = ra;
        uintptr_t *next = (uintptr_t *)bp[0];
        if (next <= bp) break;
        bp = next;
    }
    floor_checksum += n + (n ? frames[n - 1] : 0);
}

void *malloc(size_t size) {
    void *p = __libc_malloc(size);
    walk();
    return p;
}

void *calloc(size_t count, size_t size) {
    void *p = __libc_calloc(count, size);
    walk();
    return p;
}

void *realloc(void *ptr, size_t size) {
    void *p = __libc_realloc(ptr, size);
    walk();
    return p;
}

void free(void *ptr) { __libc_free(ptr); }
