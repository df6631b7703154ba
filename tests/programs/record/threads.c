/* 8 threads allocating and freeing concurrently: exactly THREADS * ROUNDS blocks of 77 bytes. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define THREADS 8
#define ROUNDS 20000

void *volatile sink;

static void *worker(void *arg) {
    (void)arg;
    void *held[16] = {0};
    for (int i = 0; i < ROUNDS; i++) {
        int slot = i % 16;
        free(held[slot]);
        held[slot] = malloc(77);
        sink = held[slot];
    }
    for (int i = 0; i < 16; i++) free(held[i]);
    return NULL;
}

int main(void) {
    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++) pthread_create(&threads[i], NULL, worker, NULL);
    for (int i = 0; i < THREADS; i++) pthread_join(threads[i], NULL);
    puts("threads done");
    return 0;
}
