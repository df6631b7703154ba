/* Loads each plugin named on the command line, calls its `plugin_entry` (which leaks one block)
 * and unloads it before loading the next: a plugin loaded after another was unloaded usually
 * lands at the same addresses. Prints each plugin's load address. */
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        void *handle = dlopen(argv[i], RTLD_NOW);
        if (!handle) {
            fprintf(stderr, "%s\n", dlerror());
            return 1;
        }
        void (*entry)(void) = (void (*)(void))dlsym(handle, "plugin_entry");
        if (!entry) {
            fprintf(stderr, "%s\n", dlerror());
            return 1;
        }
        printf("%s at %p\n", argv[i], (void *)entry);
        entry();
        dlclose(handle);
    }
    return 0;
}
