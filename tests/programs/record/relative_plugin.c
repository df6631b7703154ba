/* A plugin that leaks one block of 4321 bytes, loaded by a relative path (relative_dlopen.c):
 * `report` run from another directory must still find it and name plugin_leak and its line. */
#include <stdlib.h>

__attribute__((noinline)) void *plugin_leak(void) {
    return malloc(4321); /* the leak */
}
