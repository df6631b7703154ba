/* Built twice. With -DLIBRARY: a library whose constructor aborts (SIGABRT) when EARLY_ABORT is
 * set, before the tracer's constructor runs (the program's libraries are initialised first).
 * Without: a program linked with it. `record` reported "did not start the tracer … statically
 * linked or setuid" and exit status 2; the status is now the command's (134). */
#include <stdio.h>
#include <stdlib.h>

#ifdef LIBRARY
__attribute__((constructor)) static void abort_early(void) {
    if (getenv("EARLY_ABORT")) abort();
}
int early_value(void) { return 42; }
#else
int early_value(void);
int main(void) {
    printf("%d\n", early_value());
    return 0;
}
#endif
