/* Churns small blocks, then leaks a 4321-byte block carved from the top chunk. Its last 8 bytes
 * overlap the header of the new top chunk, which glibc's main arena (in libc's data) points at:
 * for memcheck, whose malloc replaces glibc's, the block is plainly definitely lost. */
#include <stdlib.h>

void *volatile sink;

int main(void) {
    for (int i = 0; i < 10000; i++) {
        sink = malloc(1 + (size_t)i % 300);
        free(sink);
    }
    sink = malloc(4321);
    sink = NULL;
    return 0;
}
