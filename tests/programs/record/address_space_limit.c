/* Lowers its address-space limit (RLIMIT_AS) to 300 MiB, then allocates until malloc returns
 * NULL, as a program sized for a container's limit does. Under the tracer, the tracer's own
 * allocations then failed too, and Rust's allocation error handler aborted the program.
 * Expected: the line below and exit status 0, as without the tool. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
int main(void) {
    struct rlimit limit = {.rlim_cur = 300ul << 20, .rlim_max = 300ul << 20};
    if (setrlimit(RLIMIT_AS, &limit) != 0) {
        perror("setrlimit");
        return 2;
    }
    int big = 0, small = 0;
    while (malloc(1 << 20)) big++;
    while (malloc(100)) small++;
    printf("malloc returned NULL after %d MiB and %d small blocks\n", big, small);
    return 0;
}
