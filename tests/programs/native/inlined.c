/* A leak whose allocating function is inlined into its caller (built -O2), so the report must
 * expand the inlined frame from DWARF: fill [inlined] ← make ← main. */
#include <stdlib.h>
#include <string.h>

static inline __attribute__((always_inline)) char *fill(size_t size) {
    char *block = malloc(size); /* line:fill */
    memset(block, 9, size);
    return block;
}

__attribute__((noinline)) char *make(size_t size) {
    char *block = fill(size + 3); /* line:make */
    block[1] = 2;
    return block;
}

int main(int argc, char **argv) {
    (void)argv;
    char *block = make(50 + (size_t)argc); /* line:main */
    return block[1] == 2 ? 0 : 1;
}
