/* Sets a file size limit (RLIMIT_FSIZE) smaller than any trace, as programs guarding their own
 * output do, allocates for a while and exits 7. Writing past the limit sends SIGXFSZ to the whole
 * process: the tracer must stop its trace instead of killing the program. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

void *volatile sink;

int main(void) {
    struct rlimit limit = {64, 64};
    if (setrlimit(RLIMIT_FSIZE, &limit) != 0) return 2;
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < 5000; i++) {
            sink = malloc(16 + (size_t)(i % 300));
            if (i % 3) free(sink);
        }
        usleep(10000); /* spans several writer flushes */
    }
    return 7;
}
