/* A shared library loaded at run time by dlopen_main.c: its frames must unwind and symbolize. */
#include <stdlib.h>

void *volatile plugin_sink;

__attribute__((noinline)) void *plugin_alloc(void) {
    void *p = malloc(9999);
    plugin_sink = p;
    return p;
}
