/* Allocation-heavy benchmark for `bench/native_overhead.py`: PAIRS malloc/free pairs of varying
 * sizes (16..2063 bytes), each made 18 frames deep (main + 17 chained functions + leaf), with a
 * small ring of live blocks so addresses vary. Usage: native_overhead [PAIRS] (default 10000000). */
#include <stdlib.h>

#define RING 64

void *volatile sink;
static void *ring[RING];
static unsigned long counter;

__attribute__((noinline)) static void leaf(unsigned long n) {
    for (unsigned long i = 0; i < n; i++) {
        unsigned long k = counter++;
        size_t size = 16 + (k * 7919u) % 2048u;
        unsigned slot = k % RING;
        free(ring[slot]);
        ring[slot] = malloc(size);
        sink = ring[slot];
    }
}

#define CHAIN(name, next)                                           \
    __attribute__((noinline)) static void name(unsigned long n) {   \
        next(n);                                                    \
        sink = (void *)n;                                           \
    }
CHAIN(f17, leaf)
CHAIN(f16, f17)
CHAIN(f15, f16)
CHAIN(f14, f15)
CHAIN(f13, f14)
CHAIN(f12, f13)
CHAIN(f11, f12)
CHAIN(f10, f11)
CHAIN(f9, f10)
CHAIN(f8, f9)
CHAIN(f7, f8)
CHAIN(f6, f7)
CHAIN(f5, f6)
CHAIN(f4, f5)
CHAIN(f3, f4)
CHAIN(f2, f3)
CHAIN(f1, f2)

int main(int argc, char **argv) {
    unsigned long pairs = argc > 1 ? strtoul(argv[1], NULL, 10) : 10000000ul;
    /* Several entries into the chain so stacks are not all identical at the leaf. */
    for (unsigned long done = 0; done < pairs; done += 1000) f1(pairs - done < 1000 ? pairs - done : 1000);
    for (int i = 0; i < RING; i++) free(ring[i]);
    return 0;
}
