/* A daemon's start-up: chdir("/"), umask(0777), setsid(), then gets rid of every inherited
 * descriptor the way MODE says ("close-loop": close 3..1023, "close-range": close_range(3, ~0U),
 * "dup2": dup2 /dev/null over 3..63), opens its own log files (reusing the tracer's descriptor
 * number), allocates, and checks that its files hold exactly what it wrote: exit 0 if so, 3 if
 * anything foreign got in. Leaks one 4321-byte block and keeps 1000 blocks of 77 bytes.
 * Usage: daemon MODE DIR (DIR absolute: the program has left the starting directory). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define LOGS 4
#define KEPT 1000

void *volatile sink;
static void *volatile kept[KEPT];

static void drop_descriptors(const char *mode) {
    if (strcmp(mode, "close-loop") == 0) {
        for (int fd = 3; fd < 1024; fd++) close(fd);
    } else if (strcmp(mode, "close-range") == 0) {
        syscall(SYS_close_range, 3u, ~0u, 0);
    } else if (strcmp(mode, "dup2") == 0) {
        int null = open("/dev/null", O_WRONLY);
        for (int fd = 3; fd < 64; fd++)
            if (fd != null) dup2(null, fd);
    } else {
        exit(2);
    }
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    if (chdir("/") != 0) return 2;
    umask(0777);
    setsid();
    drop_descriptors(argv[1]);
    umask(022);
    int logs[LOGS];
    char path[4096];
    for (int i = 0; i < LOGS; i++) {
        snprintf(path, sizeof path, "%s/log%d.txt", argv[2], i);
        logs[i] = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
        if (logs[i] < 0) return 2;
    }
    char line[64];
    for (int round = 0; round < 100; round++) {
        for (int i = 0; i < 2000; i++) free(malloc(1 + (size_t)(i * 7 + round) % 600));
        for (int i = 0; i < LOGS; i++) {
            int n = snprintf(line, sizeof line, "round %03d\n", round);
            if (write(logs[i], line, (size_t)n) != n) return 2;
        }
    }
    for (int i = 0; i < KEPT; i++) kept[i] = malloc(77);
    sink = malloc(4321);
    sink = NULL;
    usleep(150000); /* at least one periodic flush after the descriptors changed */
    for (int i = 0; i < LOGS; i++) {
        off_t size = lseek(logs[i], 0, SEEK_END);
        if (size != 100 * 10) return 3;
        char expected[16], got[16];
        for (int round = 0; round < 100; round++) {
            snprintf(expected, sizeof expected, "round %03d\n", round);
            if (pread(logs[i], got, 10, round * 10) != 10 || memcmp(got, expected, 10) != 0) return 3;
        }
    }
    puts("daemon done");
    return 0;
}
