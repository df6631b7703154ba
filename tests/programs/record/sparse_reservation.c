/* A mostly untouched reservation: 4 GiB of private anonymous memory (MAP_NORESERVE) of which
 * three pages are written, each holding the only pointer to a block (at the start, in the
 * middle, on the last page). The exit scan reads only the touched pages of such a mapping.
 * Expected: definitely lost 50 bytes in 1 block; still reachable 600 bytes in 3 blocks (100, 200
 * and 300). No stdio, so no stdio buffer joins the reachable blocks. */
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

void *volatile sink;

int main(void) {
    size_t size = (size_t)4 << 30;
    char *reserved = mmap(NULL, size, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (reserved == MAP_FAILED) return 3;
    *(void **)(reserved + 8) = malloc(100);
    *(void **)(reserved + size / 2 + 24) = malloc(200);
    *(void **)(reserved + size - 16) = malloc(300);
    sink = malloc(50);
    sink = NULL;
    if (write(1, "reserved\n", 9) != 9) return 4;
    return 0;
}
