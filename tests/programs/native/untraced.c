/* 96 MiB from mmap, touched, beside a few bytes from malloc: a resident set far above the heap
 * the malloc hooks see, which `leaksift report` points out (crates/leaksift/tests/report.rs). */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

int main(void) {
    size_t size = (size_t)96 << 20;
    char *region = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (region == MAP_FAILED)
        return 1;
    memset(region, 1, size);
    char *small = malloc(64);
    if (small == NULL)
        return 1;
    small[0] = region[size - 1];
    int status = small[0] == 1 ? 0 : 2;
    free(small);
    return status;
}
