/* fork then exec: the parent allocates 1111 bytes, the fork child 2222, the exec'd image 4444.
 * The parent sleeps 500 ms before it forks: a followed child's trace times count from the fork,
 * so the child's exit is stamped within milliseconds, not after the parent's 500 ms. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

void *volatile sink;

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "exec-image") == 0) {
        sink = malloc(4444);
        puts("exec image done");
        return 5;
    }
    sink = malloc(1111);
    fflush(stdout);
    usleep(500000);
    pid_t child = fork();
    if (child == 0) {
        sink = malloc(2222);
        exit(0);
    }
    int status = 0;
    waitpid(child, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return 1;
    char *image_args[] = {argv[0], "exec-image", NULL};
    execv(argv[0], image_args);
    perror("execv");
    return 1;
}
