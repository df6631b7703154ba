/* Two threads load and unload a library in a loop (dlclose frees memory while it holds the
 * loader's locks) while main leaks a block and exits. The tracer used to crash here: it read a
 * library's unwind header after another thread had unloaded it. And with the other threads'
 * allocation calls held while the exit scan runs, the writer must not wait for the loader's
 * locks a held thread may own. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

static void *load_and_unload(void *unused) {
    (void)unused;
    for (;;) {
        void *library = dlopen("libm.so.6", RTLD_NOW);
        void *block = malloc(100);
        free(block);
        if (library != NULL) {
            dlclose(library);
        }
    }
    return NULL;
}

int main(void) {
    pthread_t thread;
    for (int k = 0; k < 2; k++) {
        pthread_create(&thread, NULL, load_and_unload, NULL);
    }
    usleep(200 * 1000);
    char *volatile leaked = malloc(55);
    leaked = NULL;
    exit(0);
}
