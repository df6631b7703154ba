/* vfork then exec, twice, as dash runs the simple commands of `sh -c "a; b"`: the vfork child
 * shares the parent's memory, tracer state included, until its exec. A third child's exec fails
 * (no such file) and it ends with _exit(127) (exit would run, and use up, the parent's exit
 * handlers: undefined behaviour after vfork). The parent allocates 1111 bytes before the
 * children and 2222 bytes after them. */
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

void *volatile sink;

int main(void) {
    sink = malloc(1111);
    for (int i = 0; i < 3; i++) {
        const char *path = i < 2 ? "/bin/true" : "/nonexistent/leaksift-exec-target";
        pid_t child = vfork();
        if (child == 0) {
            char *args[] = {(char *)path, NULL};
            execv(path, args);
            _exit(127);
        }
        int status = 0;
        if (child < 0 || waitpid(child, &status, 0) != child) return 1;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != (i < 2 ? 0 : 127)) return 1;
    }
    sink = malloc(2222);
    return 0;
}
