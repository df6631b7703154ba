/* A thread leaks a block whose only pointer stays in its (returned) stack frame, then is joined.
 * memcheck calls it definitely lost: memory below an exited thread's stack pointer is not a
 * root, even though glibc keeps the stack mapped for reuse. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
void *volatile sink;
__attribute__((noinline)) static void *worker(void *arg) {
    (void)arg;
    char *p = malloc(777);
    memset(p, 1, 777);
    char *volatile keep = p;   /* the only pointer lives in this thread's stack frame */
    (void)keep;
    return NULL;
}
int main(void) {
    pthread_t t;
    pthread_create(&t, NULL, worker, NULL);
    pthread_join(t, NULL);
    return 0;
}
