/* An event loop that blocks SIGTERM and SIGCHLD and reads them from a signalfd (systemd-style
 * services do this): sends itself SIGTERM and reaps a forked child, five times, printing each
 * signal it read, then leaks one 4321-byte block and exits 0. A thread that does not block the
 * signals would get them instead: SIGTERM's default action would kill the process, a SIGCHLD
 * taken there would leave the loop waiting (an alarm ends it after 20 s). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

void *volatile sink;

int main(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGCHLD);
    alarm(20);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0) return 2;
    int fd = signalfd(-1, &set, SFD_CLOEXEC);
    if (fd < 0) return 2;
    for (int round = 0; round < 5; round++) {
        pid_t child = fork();
        if (child == 0) _exit(0);
        kill(getpid(), SIGTERM);
        int term = 0, chld = 0;
        while (!term || !chld) {
            struct signalfd_siginfo info;
            if (read(fd, &info, sizeof info) != sizeof info) return 2;
            term |= info.ssi_signo == SIGTERM;
            chld |= info.ssi_signo == SIGCHLD;
        }
        waitpid(child, NULL, 0);
        printf("round %d: read SIGTERM and SIGCHLD\n", round);
    }
    sink = malloc(4321);
    sink = NULL;
    return 0;
}
