/* glibc keeps the message of a failed dlsym or dlopen in a per-thread state until the thread's
 * next dl* call frees it: at exit memcheck finds the message still reachable (from that state).
 * The tracer looked up glibc's exit, dlopen and __gnu_cxx::__freeres with dlsym when the
 * program called them or exited; that freed the message unrecorded, and the trace called it
 * definitely lost.
 *
 * Modes:
 *   dlsym   a failed dlsym, then main returns (its message pending at exit);
 *   dlopen  a dlopen of a missing library and dlerror(), a successful dlopen (of the program
 *           itself: a new library would add the loader's own blocks, one of which memcheck calls
 *           possibly lost or not depending on where it lands), a failed dlsym in it, then
 *           exit() (through the tracer's exit hook).
 * Expected: exit status 0, nothing definitely, indirectly or possibly lost; the messages (and
 * glibc's record of them) still reachable, as memcheck finds them. */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "dlsym";
    if (strcmp(mode, "dlsym") == 0) {
        return dlsym(RTLD_DEFAULT, "leaksift_no_such_symbol") != NULL;
    }
    if (strcmp(mode, "dlopen") != 0) return 2;
    if (dlopen("/nonexistent/libleaksift-missing.so", RTLD_NOW) != NULL) return 3;
    const char *message = dlerror();
    if (message == NULL || strstr(message, "libleaksift-missing.so") == NULL) return 4;
    void *self = dlopen(NULL, RTLD_NOW);
    if (self == NULL) return 5;
    if (dlsym(self, "leaksift_no_such_symbol") != NULL) return 6;
    exit(0);
}
