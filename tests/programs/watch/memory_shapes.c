/* Memory shapes for the `leaksift watch` tests; the test harness compiles this with cc.
 *
 *   memory_shapes leak-sawtooth  keeps 20 KiB every 10 ms (about 2 MiB/s) under a sawtooth of
 *                                temporaries (512 KiB per tick, all freed every 12 ticks)
 *   memory_shapes sawtooth       the same temporaries around a flat baseline, nothing kept
 *   memory_shapes plateau        keeps 40 KiB every 10 ms for 4 s (16 MiB), then holds
 *   memory_shapes flat           one 8 MiB block, then nothing
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
    if (!leak && !sawtooth && !plateau && strcmp(mode, "flat")) {
        fprintf(stderr, "usage: %s leak-sawtooth|sawtooth|plateau|flat\n", argv[0]);
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
