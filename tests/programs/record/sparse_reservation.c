/* A mostly untouched reservation: 4 GiB of private anonymous memory (MAP_NORESERVE) of which
 * three pages are written, each holding the only pointer to a block (at the start, in the
 * middle, on the last page); and a 64 MiB block, held by a global, of which one page in the
 * middle holds the only pointer to a 400-byte block. The exit scan reads only the touched pages
 * of such a mapping or block.
 * Expected: definitely lost 50 bytes in 1 block; still reachable 67,109,864 bytes in 5 blocks
 * (100, 200, 300, 64 MiB and 400). No stdio, so no stdio buffer joins the reachable blocks. */
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

void *volatile sink;
void **big;

int main(void) {
    size_t size = (size_t)4 << 30;
    char *reserved = mmap(NULL, size, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (reserved == MAP_FAILED) return 3;
    *(void **)(reserved + 8) = malloc(100);
    *(void **)(reserved + size / 2 + 24) = malloc(200);
    *(void **)(reserved + size - 16) = malloc(300);
    big = malloc((size_t)64 << 20);
    if (big == NULL) return 5;
    big[((size_t)40 << 20) / sizeof *big] = malloc(400);
    sink = malloc(50);
    sink = NULL;
    if (write(1, "reserved\n", 9) != 9) return 4;
    return 0;
}
