/* dlopen a plugin (path in argv[1]), allocate through it, dlclose it: the module map must show
 * the plugin loaded then unloaded, and the allocation's stack must go plugin_alloc -> main. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    void *handle = dlopen(argv[1], RTLD_NOW);
    if (!handle) {
        fprintf(stderr, "%s\n", dlerror());
        return 1;
    }
    void *(*plugin_alloc)(void) = (void *(*)(void))dlsym(handle, "plugin_alloc");
    void *block = plugin_alloc();
    free(block);
    dlclose(handle);
    puts("dlopen done");
    return 0;
}
