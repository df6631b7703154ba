/* mmap/munmap traced with --mmap: one region unmapped, one kept. */
#include <stdio.h>
#include <sys/mman.h>

void *volatile sink;

int main(void) {
    void *gone = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(gone, 1 << 20);
    sink = mmap(NULL, 3 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    puts("mmap done");
    return 0;
}
