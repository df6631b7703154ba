/* Dies abnormally after allocating a marker block: "segv" faults once a line arrives on stdin
 * (so the test can first see the block flushed), "wait" prints its pid and
 * sleeps until killed, "scan" leaks a block and waits for a line on stdin (on-demand scan).
 * "closefds" closes every descriptor like a daemon, opens a file that likely reuses the tracer's
 * descriptor number, allocates a lot and exits 0 only if nothing foreign was written to it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

void *volatile sink;

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "segv";
    if (strcmp(mode, "segv") == 0) {
        sink = malloc(5555);
        printf("ready %d\n", (int)getpid());
        fflush(stdout);
        char line[16];
        if (!fgets(line, sizeof line, stdin)) return 2;
        *(volatile int *)0 = 1;
    } else if (strcmp(mode, "wait") == 0) {
        sink = malloc(6666);
        printf("ready %d\n", (int)getpid());
        fflush(stdout);
        for (;;) pause();
    } else if (strcmp(mode, "closefds") == 0 && argc > 2) {
        for (int fd = 3; fd < 1024; fd++) close(fd);
        int fd = open(argv[2], O_RDWR | O_CREAT | O_TRUNC, 0644);
        for (int i = 0; i < 200000; i++) free(malloc(1 + i % 500));
        usleep(300000); /* several writer flush periods */
        off_t size = lseek(fd, 0, SEEK_END);
        return size == 0 ? 0 : 3;
    } else if (strcmp(mode, "scan") == 0) {
        sink = malloc(7777);
        sink = NULL;
        printf("ready %d\n", (int)getpid());
        fflush(stdout);
        char line[16];
        if (!fgets(line, sizeof line, stdin)) return 2;
    }
    return 0;
}
