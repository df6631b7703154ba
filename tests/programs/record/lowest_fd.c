/* Prints the descriptor number open() returns: POSIX gives the lowest free one, and programs
 * rely on it (`close(0); open(..)` to replace stdin, tests asserting no descriptor leaked). */
#include <fcntl.h>
#include <stdio.h>

int main(void) {
    int fd = open("/dev/null", O_RDONLY);
    printf("open returned %d\n", fd);
    return fd < 0;
}
