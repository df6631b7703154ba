/* Six threads allocate and free as fast as they can; main cancels them after 100 ms. malloc
 * and free are no cancellation points, so without the tracer no thread is cancelled and all
 * run to the end. Under the tracer the same must hold: its back-pressure sleep (the threads
 * outrun the writer) used glibc's usleep, a cancellation point, and all six were cancelled
 * inside malloc. Prints "joined, N cancelled". */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void *volatile sink;

static void *worker(void *arg) {
    for (long i = 0; i < 2000000; i++) {
        void *p = malloc(16 + (i & 255));
        sink = p;
        free(p);
    }
    return arg;
}

int main(void) {
    pthread_t threads[6];
    for (int i = 0; i < 6; i++) pthread_create(&threads[i], NULL, worker, NULL);
    usleep(100000);
    for (int i = 0; i < 6; i++) pthread_cancel(threads[i]);
    int cancelled = 0;
    for (int i = 0; i < 6; i++) {
        void *result;
        pthread_join(threads[i], &result);
        cancelled += result == PTHREAD_CANCELED;
    }
    printf("joined, %d cancelled\n", cancelled);
    return 0;
}
