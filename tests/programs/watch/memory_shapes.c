/* Memory shapes for the `leaksift watch` tests; the test harness compiles this with cc.
 *
 *   memory_shapes leak-sawtooth  keeps 20 KiB every 10 ms (about 2 MiB/s) under a sawtooth of
 *                                temporaries (512 KiB per tick, all freed every 12 ticks)
 *   memory_shapes sawtooth       the same temporaries around a flat baseline, nothing kept
 *   memory_shapes plateau        keeps 40 KiB every 10 ms for 4 s (16 MiB), then holds
 *   memory_shapes flat           one 8 MiB block, then nothing
 *   memory_shapes leak-exit      keeps 128 KiB every 10 ms for 3 s (37.5 MiB), then frees it all,
 *                                sleeps 90 ms and exits 0: an exit that frees its memory
 *   memory_shapes rise-fall      keeps 128 KiB every 10 ms for 2 s, then frees one block every
 *                                10 ms until none is left, and exits 0: no leak
 *
 * Every mode starts with an 8 MiB block and runs for at most 120 s. All memory is written to, so
 * it is resident. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KIB 1024
#define TICK_NS (10 * 1000 * 1000)
#define TEMPORARY_SIZE (512 * KIB)
#define TEMPORARIES_PER_TOOTH 12

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *touched(size_t size, int value) {
    void *p = malloc(size);
    if (!p) {
        perror("malloc");
        exit(1);
    }
    memset(p, value, size);
    return p;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    int leak = !strcmp(mode, "leak-sawtooth");
    int sawtooth = leak || !strcmp(mode, "sawtooth");
    int plateau = !strcmp(mode, "plateau");
    int leak_exit = !strcmp(mode, "leak-exit");
    int rise_fall = !strcmp(mode, "rise-fall");
    if (!leak && !sawtooth && !plateau && !leak_exit && !rise_fall && strcmp(mode, "flat")) {
        fprintf(stderr, "usage: %s leak-sawtooth|sawtooth|plateau|flat|leak-exit|rise-fall\n",
                argv[0]);
        return 2;
    }
    /* A fixed mmap threshold: temporaries are mmapped and munmapped, so freeing them really
     * lowers RSS (glibc's dynamic threshold would move them to the heap after the first free). */
    mallopt(M_MMAP_THRESHOLD, 64 * KIB);
    volatile char *base = touched(8 * 1024 * KIB, 1);
    void *temporaries[TEMPORARIES_PER_TOOTH];
    int held = 0;
    double start = now();
    struct timespec tick = {0, TICK_NS};
    if (leak_exit || rise_fall) {
        /* Blocks above the mmap threshold: each free gives its pages back at once. */
        enum { KEPT_MAX = 400 };
        static void *kept[KEPT_MAX];
        int count = 0;
        double grow_for = leak_exit ? 3.0 : 2.0;
        while (now() - start < grow_for && count < KEPT_MAX) {
            kept[count] = touched(128 * KIB, count | 1);
            count++;
            nanosleep(&tick, NULL);
        }
        while (count > 0) {
            free(kept[--count]);
            if (rise_fall) nanosleep(&tick, NULL);
        }
        /* 90 ms: at a 50 ms interval one or two samples see the freed state (three would need
         * 100 ms), and a sampler delayed by load still sees one. */
        struct timespec last = {0, 90 * 1000 * 1000};
        nanosleep(&last, NULL);
        return base[0] == 1 ? 0 : 1;
    }
    for (unsigned n = 0; now() - start < 120.0; n++) {
        if (leak) {
            (void)touched(20 * KIB, (int)n | 1);
        }
        if (plateau && now() - start < 4.0) {
            (void)touched(40 * KIB, (int)n | 1);
        }
        if (sawtooth) {
            temporaries[held++] = touched(TEMPORARY_SIZE, (int)n | 1);
            if (held == TEMPORARIES_PER_TOOTH) {
                while (held > 0) {
                    free(temporaries[--held]);
                }
            }
        }
        nanosleep(&tick, NULL);
    }
    return base[0] == 1 ? 0 : 1;
}
