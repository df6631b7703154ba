/* Known call chains for frame-by-frame stack checks:
 *   main -> level1 -> level2 -> level3 -> malloc(12345)
 *   main -> sort_with_allocation -> qsort (libc, no frame pointers) -> compare -> malloc(23456) */
#include <stdlib.h>

void *volatile sink;

__attribute__((noinline)) void *level3(void) {
    void *p = malloc(12345);
    sink = p;
    return p;
}

__attribute__((noinline)) void *level2(void) {
    void *p = level3();
    sink = p;
    return p;
}

__attribute__((noinline)) void *level1(void) {
    void *p = level2();
    sink = p;
    return p;
}

static int allocated_in_compare;

__attribute__((noinline)) int compare(const void *a, const void *b) {
    if (!allocated_in_compare) {
        allocated_in_compare = 1;
        sink = malloc(23456);
        free(sink);
    }
    return *(const int *)a - *(const int *)b;
}

__attribute__((noinline)) void sort_with_allocation(void) {
    int values[64];
    for (int i = 0; i < 64; i++) values[i] = (i * 37) % 64;
    qsort(values, 64, sizeof values[0], compare);
    sink = &values[0];
}

int main(void) {
    free(level1());
    sort_with_allocation();
    sink = 0;
    return 0;
}
