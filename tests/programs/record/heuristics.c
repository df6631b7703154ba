/* Interior pointers that valgrind's default leak heuristics (--leak-check-heuristics=all) count
 * as start pointers, and one that no heuristic covers.
 * Expected (like memcheck): the newarray, length64 and stdstring blocks are still reachable,
 * the plain interior block is possibly lost. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void *volatile sink;
char *newarray_elements;  /* new[]-style: count word, then 3 elements of 16 bytes */
char *length64_payload;   /* sqlite-style: length word, then 40 bytes */
char *stdstring_chars;    /* libstdc++ COW string: length, capacity, refcount, chars */
char *plain_interior;     /* first word 0: no heuristic applies */

__attribute__((noinline)) static char *block(size_t n) {
    char *p = malloc(n);
    memset(p, 0, n);
    sink = p;
    return p;
}

int main(void) {
    char *a = block(8 + 3 * 16);
    *(uint64_t *)a = 3;
    newarray_elements = a + 8;

    char *b = block(8 + 41);
    *(uint64_t *)b = 41;
    length64_payload = b + 8;

    char *c = block(24 + 30 + 1);
    ((uint64_t *)c)[0] = 12; /* length */
    ((uint64_t *)c)[1] = 30; /* capacity */
    stdstring_chars = c + 24;

    plain_interior = block(40) + 8;
    a = b = c = NULL;
    sink = NULL;
    return 0;
}
