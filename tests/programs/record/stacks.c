/* Known call chains for frame-by-frame stack checks:
 *   main -> level1 -> level2 -> level3 -> malloc(12345)
 *   main -> sort_with_allocation -> qsort (libc, no frame pointers) -> compare -> malloc(23456)
 *   main -> via_a -> common -> malloc(34343) and main -> via_b -> common -> malloc(34343):
 *   the same allocation site at the same stack depth under different callers. */
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

__attribute__((noinline)) void *common(void) {
    void *p = malloc(34343);
    sink = p;
    return p;
}

__attribute__((noinline)) void *via_a(void) {
    void *p = common();
    sink = p;
    return p;
}

__attribute__((noinline)) void *via_b(void) {
    void *p = common();
    sink = p;
    return p;
}

int main(void) {
    for (int i = 0; i < 3; i++) {
        free(via_a());
        free(via_b());
    }
    free(level1());
    sort_with_allocation();
    sink = 0;
    return 0;
}
