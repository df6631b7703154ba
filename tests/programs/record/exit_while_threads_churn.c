/* Three threads cycle blocks through a 64-slot ring on their own stacks (free the slot's block,
 * allocate a new one into it) while main leaks one 99-byte block and exits. `exit` stops none
 * of them, so the heap changes while the exit scan reads memory: a block freed meanwhile was
 * still in the scanned set while its slot already held its successor, and it looked lost (tens
 * of "definitely lost" blocks, a different number each run). memcheck, which runs one thread at
 * a time, finds the one 99-byte block lost. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void *churn(void *unused) {
    (void)unused;
    void *ring[64] = {0};
    for (unsigned i = 0;; i++) {
        free(ring[i % 64]);
        ring[i % 64] = malloc(16 + i % 500);
        memset(ring[i % 64], 0, 8);
    }
    return NULL;
}

int main(void) {
    pthread_t thread;
    for (int k = 0; k < 3; k++) {
        pthread_create(&thread, NULL, churn, NULL);
    }
    usleep(200 * 1000);
    char *volatile leaked = malloc(99);
    leaked = NULL;
    exit(0);
}
