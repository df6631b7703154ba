/* A service that shuts down gracefully on SIGTERM or SIGHUP: prints "ready PID", waits for the
 * signal, prints which one arrived and exits 0. Leaks one 4321-byte block. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void *volatile sink;
static volatile sig_atomic_t stop;

static void on_signal(int signal) { stop = signal; }

int main(void) {
    struct sigaction action = {0};
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGHUP, &action, NULL);
    sink = malloc(4321);
    sink = NULL;
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    while (!stop) pause();
    printf("graceful shutdown on signal %d\n", (int)stop);
    return 0;
}
