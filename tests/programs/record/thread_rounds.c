/* Rounds of 8 threads that allocate and free, each round joined before the next. glibc keeps
 * some joined threads' stacks cached (with their descriptors and DTVs) and unmaps the others;
 * later stacks are mapped over the addresses of unmapped ones. The tracer excluded a dead
 * thread's stack range from the roots even after its block was gone, which hid the descriptor
 * of a stack mapped there since: 1-3 of the cached stacks' DTVs read as definitely lost in
 * most runs. Expected, as memcheck says: nothing definitely or indirectly lost, the cached
 * stacks' DTVs possibly lost (glibc keeps a pointer into each). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static void *work(void *arg) {
    (void)arg;
    for (int k = 0; k < 3000; k++) {
        void *p = malloc(64 + (rand() & 1023));
        memset(p, 0, 64);
        free(p);
        free(calloc(3, 100));
        if ((rand() & 63) == 0) usleep(1);
    }
    return NULL;
}
int main(void) {
    for (int round = 0; round < 20; round++) {
        pthread_t threads[8];
        for (int i = 0; i < 8; i++) pthread_create(&threads[i], NULL, work, NULL);
        for (int i = 0; i < 8; i++) pthread_join(threads[i], NULL);
    }
    return 0;
}
