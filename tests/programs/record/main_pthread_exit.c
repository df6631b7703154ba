/* main ends with pthread_exit while a worker goes on: glibc ends the process with exit(0) when
 * its last thread exits, and the leader stays a zombie meanwhile (/proc/<pid>/maps reads empty,
 * the process's memory is reachable only through a live thread's id). Prints "main exits PID";
 * the worker leaks one 4321-byte block and prints "worker done". */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void *volatile sink;

static void *worker(void *arg) {
    usleep(100000);
    sink = malloc(4321);
    sink = NULL;
    puts("worker done");
    fflush(stdout);
    return arg;
}

int main(void) {
    pthread_t thread;
    if (pthread_create(&thread, NULL, worker, NULL) != 0) return 2;
    printf("main exits %d\n", (int)getpid());
    fflush(stdout);
    pthread_exit(NULL);
}
