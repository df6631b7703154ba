/* Children made behind glibc's fork: syscall(SYS_fork), _Fork() (no atfork handlers run) and a
 * raw clone() without CLONE_VM. Each allocates and frees a few million times, then checks that
 * allocation still works and ends (with _exit, exit and exit). The tracer's atfork handlers never
 * run in them, so they inherit a tracer that thinks it has a writer thread: once their event
 * buffers filled up they used to wait for it for ever.
 * The parent leaks a block of 1111 bytes before the children and one of 2222 after them; the
 * children allocate 777-byte blocks only. A child still running after 20 s is killed by its
 * alarm, and the parent then exits with 1 at once. Usage: raw_fork [PAIRS] (default 1500000) */
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

void *volatile sink;
static long pairs = 1500000;

static int churn(void) {
    alarm(20);
    for (long i = 0; i < pairs; i++) {
        char *p = malloc(777);
        if (!p) return 3;
        p[0] = (char)i;
        sink = p;
        free(p);
    }
    /* Allocation keeps working after the tracer let go. */
    char *big = malloc(1 << 20);
    if (!big) return 4;
    memset(big, 1, 1 << 20);
    free(big);
    return 0;
}

static int clone_child(void *arg) {
    (void)arg;
    exit(churn());
}

static int wait_child(pid_t pid, const char *how) {
    int status;
    if (pid < 0) {
        perror(how);
        return 1;
    }
    if (waitpid(pid, &status, 0) != pid) return 1;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "%s child failed: status %#x\n", how, status);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1) pairs = atol(argv[1]);
    sink = malloc(1111);
    sink = 0;

    pid_t pid = (pid_t)syscall(SYS_fork);
    if (pid == 0) _exit(churn());
    if (wait_child(pid, "syscall(SYS_fork)")) return 1;

    pid = _Fork();
    if (pid == 0) exit(churn());
    if (wait_child(pid, "_Fork")) return 1;

    size_t stack_size = 1 << 20;
    char *stack = malloc(stack_size);
    pid = clone(clone_child, stack + stack_size, SIGCHLD, NULL);
    if (wait_child(pid, "clone")) return 1;
    free(stack);

    sink = malloc(2222);
    sink = 0;
    printf("children done\n");
    return 0;
}
