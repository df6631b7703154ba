/* Leaks a block, then becomes a daemon with daemon(3) (keeping its streams, staying in its
 * directory): glibc's daemon ends the parent with its internal _exit, which no hook sees, so the
 * parent's trace used to end without its exit scan. The child writes its pid to argv[1] and
 * exits. Usage: daemonize PIDFILE */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void *volatile sink;

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    sink = malloc(3333);
    sink = 0;
    if (daemon(1, 1) != 0) return 3;
    FILE *f = fopen(argv[1], "w");
    if (!f) return 4;
    fprintf(f, "%d\n", getpid());
    fclose(f);
    return 0;
}
