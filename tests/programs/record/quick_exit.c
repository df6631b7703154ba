/* Ends with quick_exit(5): glibc runs the at_quick_exit handlers, then its internal _exit.
 * The handler frees one block and prints; one 4321-byte block stays definitely lost. */
#include <stdio.h>
#include <stdlib.h>

void *volatile sink;
static void *freed_by_handler;

static void handler(void) {
    free(freed_by_handler);
    puts("at_quick_exit handler ran");
    fflush(stdout);
}

int main(void) {
    freed_by_handler = malloc(1234);
    at_quick_exit(handler);
    sink = malloc(4321);
    sink = NULL;
    puts("calling quick_exit");
    quick_exit(5);
}
