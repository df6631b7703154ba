/* A process-wide seccomp filter (every thread, as systemd's SystemCallFilter= sets up) that
 * refuses process_vm_readv, and pread64 too with the argument `pread`: the exit scan then reads
 * memory through /proc/self/mem, or cannot read it at all. With the argument `kill`, a call of
 * process_vm_readv kills the process instead (systemd's default action): the scan must not try
 * it. With `write`, every write is refused (the program's own output too): the trace ends
 * early, and `record` must say why.
 * Expected (without an argument): definitely lost 50 bytes in 1 block; still reachable 100 in 1
 * (a global) plus stdio's buffer. */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
void *held;
void *volatile sink;
int main(int argc, char **argv) {
    int refuse_pread = argc > 1 && strcmp(argv[1], "pread") == 0;
    int refuse_write = argc > 1 && strcmp(argv[1], "write") == 0;
    int kill = argc > 1 && strcmp(argv[1], "kill") == 0;
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_process_vm_readv, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
                 refuse_pread ? SYS_pread64 : refuse_write ? SYS_write : 0xffff, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K,
                 kill ? SECCOMP_RET_KILL_PROCESS : SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
    };
    struct sock_fprog prog = {.len = sizeof filter / sizeof filter[0], .filter = filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog) != 0) {
        perror("seccomp");
        return 2;
    }
    held = malloc(100);
    sink = malloc(50);
    sink = NULL;
    puts("filtered");
    return 0;
}
