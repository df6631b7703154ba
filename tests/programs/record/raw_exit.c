/* The main thread leaves with a raw exit system call (as a strict-seccomp program must), so
 * glibc's exit path never runs. Under the tracer its writer thread was then the process's last
 * thread and kept it alive for ever, with every signal blocked. Expected: exit status 3, as
 * without the tool; 111 bytes allocated and never freed. */
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
char *volatile sink;
int main(void) {
    sink = malloc(111);
    memset(sink, 1, 111);
    sink = NULL;
    syscall(SYS_exit, 3);
    return 5;
}
