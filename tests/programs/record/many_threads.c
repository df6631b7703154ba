// 300 threads started together, each allocating and freeing 2000 blocks of sizes 1000..1015:
// 1.2 M events, more than the tracer queues (256 buffers of 2000) before the allocating threads
// wait for its writer, so on a few cores they do wait. Every block must be in the trace once.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define THREADS 300
#define PAIRS 2000

static pthread_barrier_t start;

static void *worker(void *arg) {
    (void)arg;
    pthread_barrier_wait(&start);
    for (long j = 0; j < PAIRS; j++) {
        void *volatile p = malloc(1000 + (j % 16));
        free(p);
    }
    return NULL;
}

int main(void) {
    pthread_t threads[THREADS];
    pthread_barrier_init(&start, NULL, THREADS);
    for (int i = 0; i < THREADS; i++)
        if (pthread_create(&threads[i], NULL, worker, NULL) != 0) {
            perror("pthread_create");
            return 1;
        }
    for (int i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);
    puts("done");
    return 0;
}
