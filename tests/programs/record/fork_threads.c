/* fork while other threads allocate and free: the tracer's fork handling must not deadlock, and
 * under --follow-fork each child (allocating 3000 + i bytes) gets a complete trace. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define FORKS 4

void *volatile sink;
static volatile int stop;

static void *worker(void *arg) {
    (void)arg;
    while (!stop) {
        for (int i = 0; i < 100; i++) {
            void *p = malloc(64);
            sink = p;
            free(p);
        }
        usleep(100); /* keep the event rate modest: the test is about forks, not throughput */
    }
    return NULL;
}

int main(void) {
    pthread_t threads[3];
    for (int i = 0; i < 3; i++) pthread_create(&threads[i], NULL, worker, NULL);
    for (int i = 0; i < FORKS; i++) {
        pid_t child = fork();
        if (child == 0) {
            sink = malloc(3000 + i);
            exit(0);
        }
        int status = 0;
        waitpid(child, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return 1;
    }
    stop = 1;
    for (int i = 0; i < 3; i++) pthread_join(threads[i], NULL);
    puts("fork_threads done");
    return 0;
}
