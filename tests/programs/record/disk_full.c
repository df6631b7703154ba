/* Two million malloc/free pairs of varying sizes and a block lost every thousand: a trace far
 * bigger than the 8 KiB file system the test writes it to. The tracer must stop at the first
 * failed write and let the program run on at its own speed. Exits with status 7. */
#include <stdio.h>
#include <stdlib.h>

void *volatile sink;

__attribute__((noinline)) void lose(unsigned i) { sink = malloc(16 + i % 100); }

int main(void) {
    for (unsigned i = 0; i < 2000000; i++) {
        if (i % 1000 == 0) lose(i);
        void *p = malloc(16 + (i * 7919u) % 4000);
        sink = p;
        free(p);
    }
    puts("churned");
    return 7;
}
