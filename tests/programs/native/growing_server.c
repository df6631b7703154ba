/* A "server" that never exits cleanly: every request adds an entry to a cache that is never
 * pruned (512 bytes live per request at `remember`) and churns a 4 KiB scratch buffer. After the
 * requests it is killed with SIGKILL, so its trace has no exit scan and growth by call site is
 * the only evidence. Usage: growing_server [REQUESTS] [PAUSE_MS] (default 300 requests, 2 ms). */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct entry {
    struct entry *next;
    char payload[504];
};

static struct entry *cache;

__attribute__((noinline)) static void remember(int request) {
    struct entry *entry = malloc(sizeof *entry); /* line:remember */
    memset(entry->payload, request, sizeof entry->payload);
    entry->next = cache;
    cache = entry;
}

__attribute__((noinline)) static void handle(int request) {
    char *scratch = malloc(4096); /* line:scratch */
    memset(scratch, request, 4096);
    remember(request); /* line:handle */
    free(scratch);
}

int main(int argc, char **argv) {
    int requests = argc > 1 ? atoi(argv[1]) : 300;
    long pause_ms = argc > 2 ? atol(argv[2]) : 2;
    struct timespec pause = {pause_ms / 1000, (pause_ms % 1000) * 1000000};
    for (int request = 0; request < requests; request++) {
        handle(request); /* line:main */
        nanosleep(&pause, NULL);
    }
    raise(SIGKILL);
    return 0;
}
