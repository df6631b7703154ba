// The same total of malloc/free pairs spread over C threads that all run at once: each thread
// does TOTAL / C pairs. Per-thread buffers should make the cost per event independent of C.
// Usage: many_threads C TOTAL
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static long per_thread;

static void *worker(void *arg) {
    (void)arg;
    for (long j = 0; j < per_thread; j++) {
        void *volatile p = malloc(48 + (j % 16));
        free(p);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s THREADS TOTAL_PAIRS\n", argv[0]);
        return 2;
    }
    long threads = atol(argv[1]);
    per_thread = atol(argv[2]) / threads;
    pthread_t *ids = malloc(sizeof(pthread_t) * threads);
    for (long i = 0; i < threads; i++)
        if (pthread_create(&ids[i], NULL, worker, NULL) != 0) {
            perror("pthread_create");
            return 1;
        }
    for (long i = 0; i < threads; i++)
        pthread_join(ids[i], NULL);
    free(ids);
    return 0;
}
