/* vfork then exec, twice, as dash runs the simple commands of `sh -c "a; b"`: the vfork child
 * shares the parent's memory, tracer state included, until its exec. The parent allocates 1111
 * bytes before the two children and 2222 bytes after them. */
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

void *volatile sink;

int main(void) {
    sink = malloc(1111);
    for (int i = 0; i < 2; i++) {
        pid_t child = vfork();
        if (child == 0) {
            char *args[] = {"/bin/true", NULL};
            execv("/bin/true", args);
            _exit(127);
        }
        int status = 0;
        if (child < 0 || waitpid(child, &status, 0) != child) return 1;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return 1;
    }
    sink = malloc(2222);
    return 0;
}
