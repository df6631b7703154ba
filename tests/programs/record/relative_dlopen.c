/* Loads relative_plugin.c's library by the relative path in argv[1] with dlopen (or, built with
 * -DLINKED, is linked against it and found through LD_LIBRARY_PATH=.), calls plugin_leak and
 * drops the block: definitely lost, with plugin_leak as its innermost frame. The library stays
 * loaded. */
#include <dlfcn.h>
#include <stdio.h>

void *volatile sink;

#ifdef LINKED
void *plugin_leak(void);
#endif

int main(int argc, char **argv) {
#ifdef LINKED
    (void)argc;
    (void)argv;
    sink = plugin_leak();
#else
    if (argc < 2) return 2;
    void *handle = dlopen(argv[1], RTLD_NOW);
    if (!handle) {
        fprintf(stderr, "%s\n", dlerror());
        return 1;
    }
    void *(*leak)(void) = (void *(*)(void))dlsym(handle, "plugin_leak");
    sink = leak();
#endif
    sink = 0;
    return 0;
}
