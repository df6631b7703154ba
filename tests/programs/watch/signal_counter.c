/* An interactive program for the job-control tests: counts the signals it receives and answers
 * lines read from its standard input (the terminal).
 *
 *   at start  prints "ready pid=P pgid=G ppid=Q"
 *   "count"   prints "counts INT=i USR1=u TERM=t HUP=h CONT=c"
 *   "die"     restores SIGINT's default action and waits: the next SIGINT kills it
 *   "quit"    prints the counts as "final ..." and exits 0
 *   other     prints "got <line>"
 *   end of input exits 3.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t counts[NSIG];

static void count(int signal) { counts[signal]++; }

static void print_counts(const char *label) {
    printf("%s INT=%d USR1=%d TERM=%d HUP=%d CONT=%d\n", label, (int)counts[SIGINT],
           (int)counts[SIGUSR1], (int)counts[SIGTERM], (int)counts[SIGHUP], (int)counts[SIGCONT]);
    fflush(stdout);
}

int main(void) {
    const int counted[] = {SIGINT, SIGUSR1, SIGTERM, SIGHUP, SIGCONT};
    for (size_t i = 0; i < sizeof counted / sizeof counted[0]; i++) {
        struct sigaction action;
        memset(&action, 0, sizeof action);
        action.sa_handler = count;
        action.sa_flags = SA_RESTART;
        sigemptyset(&action.sa_mask);
        sigaction(counted[i], &action, NULL);
    }
    printf("ready pid=%d pgid=%d ppid=%d\n", (int)getpid(), (int)getpgrp(), (int)getppid());
    fflush(stdout);
    char line[256];
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\r\n")] = 0;
        if (strcmp(line, "count") == 0) {
            print_counts("counts");
        } else if (strcmp(line, "quit") == 0) {
            print_counts("final");
            return 0;
        } else if (strcmp(line, "die") == 0) {
            signal(SIGINT, SIG_DFL);
            printf("dying on SIGINT\n");
            fflush(stdout);
            for (;;) pause();
        } else {
            printf("got %s\n", line);
            fflush(stdout);
        }
    }
    return 3;
}
