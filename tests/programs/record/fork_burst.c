/* Forks N children back to back, without waiting in between (a pre-forking server starting its
 * workers); each child leaks one block of 2222 + i bytes and exits with _exit. The parent then
 * waits for all of them. Under --follow-fork the writer is held at a safe point while each fork
 * runs: a second fork requested before the writer woke from the first used to wait out a 2 s
 * timeout. Usage: fork_burst [N] (default 4, at most 16) */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

void *volatile sink;

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 4;
    if (n < 1 || n > 16) return 2;
    pid_t children[16];
    for (int i = 0; i < n; i++) {
        children[i] = fork();
        if (children[i] == 0) {
            sink = malloc(2222 + i);
            sink = 0;
            _exit(0);
        }
        if (children[i] < 0) return 3;
    }
    for (int i = 0; i < n; i++) waitpid(children[i], 0, 0);
    return 0;
}
