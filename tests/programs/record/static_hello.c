/* Linked statically (gcc -static), so LD_PRELOAD cannot inject the tracer: record must say so.
 * Also built dynamically, with its ELF header changed, as a program for another architecture. */
#include <stdio.h>

int main(void) {
    puts("static hello");
    return 4;
}
