/* A vfork child whose exec fails ends with _exit(127) while it shares the parent's memory: the
 * tracer must not run the parent's exit scan for it. The parent then leaks one 77-byte block
 * and exits normally. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

void *volatile sink;

int main(void) {
    pid_t child = vfork();
    if (child == 0) {
        char *argv[] = {"/nonexistent/leaksift-test", NULL};
        execv(argv[0], argv);
        _exit(127);
    }
    int status = 0;
    waitpid(child, &status, 0);
    sink = malloc(77);
    sink = NULL;
    printf("child status %d\n", WEXITSTATUS(status));
    return 0;
}
