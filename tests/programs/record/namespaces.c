/* What container tools do (unshare(1), nsenter, bubblewrap): joins its own mount namespace with
 * setns and creates a user namespace with unshare, both of which the kernel refuses (EINVAL) in
 * a process with more than one thread. The unshare comes first thing in main, before the tracer's
 * writer thread may have started. Prints each call's outcome (the same with and without the
 * tracer, whatever this machine allows), allocates, leaks one 4321-byte block, exits 0. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void *volatile sink;

static void report(const char *call, int rc) {
    printf("%s: %s\n", call, rc == 0 ? "ok" : strerror(errno));
}

int main(void) {
    int mount_ns = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
    report("unshare(CLONE_NEWUSER)", unshare(CLONE_NEWUSER));
    for (int i = 0; i < 10000; i++) {
        sink = malloc(1 + (size_t)i % 300);
        free(sink);
    }
    report("setns(mnt)", mount_ns < 0 ? -1 : setns(mount_ns, CLONE_NEWNS));
    sink = malloc(4321);
    sink = NULL;
    return 0;
}
