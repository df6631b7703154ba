/* A plugin built twice, as libreload1.so (-DSECOND=0) and libreload2.so (-DSECOND=1), with the
 * same code layout: the leaking functions' names have the same length and the sizes the same
 * encoding, so a leak in either has the same return addresses when the second is loaded where
 * the first was. `reload_main.c` loads, calls and unloads them one after the other. */
#include <stdlib.h>

#if SECOND
#define LEAKER plugin_two_leak
#define SIZE 2222
#else
#define LEAKER plugin_one_leak
#define SIZE 1111
#endif

__attribute__((noinline)) void LEAKER(void) {
    void *block = malloc(SIZE);
    /* Keep the allocation; the pointer is lost when the function returns. */
    __asm__ volatile("" : : "r"(block) : "memory");
}

void plugin_entry(void) {
    LEAKER();
    __asm__ volatile("" ::: "memory");
}
