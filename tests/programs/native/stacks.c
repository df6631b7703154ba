/* A leak three calls below main, for frame-by-frame stack checks. Each call line carries a
 * `line:NAME` marker the test looks up, so editing this file cannot silently break the test. */
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) char *inner_alloc(size_t size) {
    char *block = malloc(size); /* line:inner_alloc */
    memset(block, 3, size);
    return block;
}

__attribute__((noinline)) char *middle_call(size_t size) {
    char *block = inner_alloc(size * 2); /* line:middle_call */
    return block;
}

__attribute__((noinline)) char *outer_call(size_t size) {
    char *block = middle_call(size + 1); /* line:outer_call */
    return block;
}

int main(void) {
    char *leak = outer_call(20); /* line:main */
    leak[0] = 0;
    leak = NULL;
    return 0;
}
