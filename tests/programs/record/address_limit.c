/* Runs under an address-space limit (RLIMIT_AS, `ulimit -v`) of 320 MiB, as sandboxes and test
 * harnesses set: allocates 64 blocks of 1 MiB (each its own mapping) and a thread that allocates,
 * and exits 0 only if every allocation succeeded (3 otherwise). The tracer's own reservations
 * must leave the program its address space. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#define BLOCKS 64

void *volatile sink;

static void *worker(void *arg) {
    for (int i = 0; i < 1000; i++) {
        sink = malloc(64 + (size_t)i);
        if (!sink) return (void *)1;
        free(sink);
    }
    return arg;
}

int main(void) {
    struct rlimit limit = {320UL << 20, 320UL << 20};
    if (setrlimit(RLIMIT_AS, &limit) != 0) return 2;
    static void *volatile blocks[BLOCKS];
    for (int i = 0; i < BLOCKS; i++) {
        blocks[i] = malloc(1 << 20);
        if (!blocks[i]) return 3;
    }
    pthread_t thread;
    void *result = (void *)1;
    if (pthread_create(&thread, NULL, worker, NULL) != 0 || pthread_join(thread, &result) != 0 || result)
        return 3;
    for (int i = 0; i < BLOCKS; i++) free(blocks[i]);
    puts("all allocations succeeded");
    return 0;
}
