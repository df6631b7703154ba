/* libstdc++'s __gnu_cxx::__freeres(), which releases its emergency exception pool, called before
 * the exit scan as valgrind's preload calls it (the same weak reference).
 *
 * The reference is bound by the loader when it loads this library, to the libstdc++ the
 * program was linked with (null in a program without one): finding it with dlsym at exit
 * replaced the exiting thread's dlerror state, freeing, unrecorded, the message of the
 * program's last failed dlsym or dlopen, which the trace then called definitely lost. */

#define LEAKSIFT_INTERNAL __attribute__((visibility("hidden")))

extern void _ZN9__gnu_cxx9__freeresEv(void) __attribute__((weak));

/* Calls __gnu_cxx::__freeres() if the program has it. */
LEAKSIFT_INTERNAL void leaksift_cxx_freeres(void) {
    if (_ZN9__gnu_cxx9__freeresEv != 0) _ZN9__gnu_cxx9__freeresEv();
}
