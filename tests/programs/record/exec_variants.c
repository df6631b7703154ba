/* Each way of exec'ing right after an allocation: the image allocates 3333 bytes (kept in a
 * global), then at once replaces itself through the call named by argv[1] (execl, execle,
 * execlp, fexecve, execveat), with eight arguments (more than the argument registers hold) and,
 * for execle, an environment with one more variable; the new image checks both, allocates 4444
 * bytes and exits with status 5 (3 if its arguments or environment are wrong).
 * The 3333-byte block must be in the first image's trace: the tracer writes out what is pending
 * before any exec, not only before execve, execv, execvp and execvpe.
 * With argv[1] = "missing", the exec (execv of a file that does not exist) fails: the program
 * allocates 5555 bytes after it and exits with status 6. With argv[1] = "threads", a second
 * thread allocates and frees without pause while the main thread calls execl. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;
void *volatile sink;

static void *churn(void *unused) {
    (void)unused;
    for (;;) {
        void *volatile block = malloc(64);
        free(block);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc > 2 && strcmp(argv[2], "image") == 0) {
        sink = malloc(4444);
        int args_ok = argc == 8 && strcmp(argv[3], "a") == 0 && strcmp(argv[7], "e") == 0;
        const char *extra = getenv("EXEC_VARIANTS_EXTRA");
        int env_ok = strcmp(argv[1], "execle") != 0 || (extra && strcmp(extra, "yes") == 0);
        return args_ok && env_ok ? 5 : 3;
    }
    if (argc < 2) return 1;
    const char *how = argv[1];
    sink = malloc(3333);
    if (strcmp(how, "missing") == 0) {
        char *image_args[] = {argv[0], (char *)how, "image", NULL};
        execv("/nonexistent/leaksift-exec-target", image_args);
        sink = malloc(5555);
        return 6;
    }
    if (strcmp(how, "threads") == 0) {
        pthread_t thread;
        if (pthread_create(&thread, NULL, churn, NULL) != 0) return 1;
        usleep(50000);
        how = "execl";
    }
    if (strcmp(how, "execl") == 0) {
        execl(argv[0], argv[0], how, "image", "a", "b", "c", "d", "e", (char *)NULL);
    } else if (strcmp(how, "execle") == 0) {
        size_t n = 0;
        while (environ[n]) n++;
        char **env = calloc(n + 2, sizeof *env);
        memcpy(env, environ, n * sizeof *env);
        env[n] = "EXEC_VARIANTS_EXTRA=yes";
        execle(argv[0], argv[0], how, "image", "a", "b", "c", "d", "e", (char *)NULL, env);
    } else if (strcmp(how, "execlp") == 0) {
        execlp(argv[0], argv[0], how, "image", "a", "b", "c", "d", "e", (char *)NULL);
    } else {
        char *image_args[] = {argv[0], (char *)how, "image", "a", "b", "c", "d", "e", NULL};
        int fd = open(argv[0], O_RDONLY | O_CLOEXEC);
        if (fd < 0) return 1;
        if (strcmp(how, "fexecve") == 0) {
            fexecve(fd, image_args, environ);
        } else if (strcmp(how, "execveat") == 0) {
            execveat(fd, "", image_args, environ, AT_EMPTY_PATH);
        }
    }
    perror(how);
    return 1;
}
