/* Every hooked allocator entry point once, each with a distinctive size; every block is freed.
 * Exits 1 if an aligned allocator returned a misaligned block. */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

void *volatile sink;
void *volatile nothing; /* NULL the compiler cannot see (it turns realloc(NULL, n) into malloc) */

int main(void) {
    long page = sysconf(_SC_PAGESIZE);
    void *m = malloc(1001);
    void *c = calloc(7, 143);             /* 1001 bytes, kind calloc */
    void *r = realloc(nothing, 1003);     /* realloc of NULL */
    r = realloc(r, 50004);                /* grows (likely moves) */
    void *ra = reallocarray(nothing, 5, 201); /* 1005 bytes */
    void *pm = NULL;
    if (posix_memalign(&pm, 64, 1006) != 0) return 1;
    void *aa = aligned_alloc(128, 1024 + 128);
    void *ma = memalign(256, 1008);
    void *va = valloc(1009);
    void *pv = pvalloc(1010);
    if ((uintptr_t)pm % 64 || (uintptr_t)aa % 128 || (uintptr_t)ma % 256 || (uintptr_t)va % page ||
        (uintptr_t)pv % page)
        return 1;
    void *gone = malloc(1011);
    if (realloc(gone, 0) != NULL) return 1; /* frees */
    /* Publish every block so the compiler cannot elide any allocation/free pair. */
    void *blocks[] = {m, c, r, ra, pm, aa, ma, va, pv};
    for (unsigned i = 0; i < sizeof blocks / sizeof blocks[0]; i++) sink = blocks[i];
    free(m);
    free(c);
    free(r);
    free(ra);
    free(pm);
    free(aa);
    free(ma);
    free(va);
    free(pv);
    free(NULL);
    return 0;
}
