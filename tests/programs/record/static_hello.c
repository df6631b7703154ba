/* Linked statically (gcc -static), so LD_PRELOAD cannot inject the tracer: record must say so. */
#include <stdio.h>

int main(void) {
    puts("static hello");
    return 4;
}
