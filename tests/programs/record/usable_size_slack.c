/* A block's only pointer stored past the block's request but within its usable size, as glibc
 * allows once `malloc_usable_size` said so (systemd's GREEDY_REALLOC, for one, uses the slack):
 * the 25-byte block is 40 bytes usable, and the 100-byte block's address lives at offset 32.
 * The scan must read those bytes: both blocks are still reachable. (Under memcheck
 * `malloc_usable_size` answers the requested 25, so the program never stores there.) */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

static char *root;

int main(void) {
    root = malloc(25);
    size_t usable = malloc_usable_size(root);
    if (usable < 40) {
        return 3; /* not glibc's 64-bit chunk layout: nothing to test */
    }
    void *child = malloc(100);
    memcpy(root + 32, &child, sizeof child);
    child = NULL;
    return 0;
}
