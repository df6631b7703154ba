/* Dies abnormally after allocating a marker block: "segv" faults, "wait" prints its pid and
 * sleeps until killed, "scan" leaks a block and waits for a line on stdin (on-demand scan). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void *volatile sink;

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "segv";
    if (strcmp(mode, "segv") == 0) {
        sink = malloc(5555);
        *(volatile int *)0 = 1;
    } else if (strcmp(mode, "wait") == 0) {
        sink = malloc(6666);
        printf("ready %d\n", (int)getpid());
        fflush(stdout);
        for (;;) pause();
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
