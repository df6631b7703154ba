// A C++ program linked with jemalloc mixing every entry point jemalloc defines. Under the
// tracer (whose malloc family comes first) each of these once met a block of the other
// allocator: `delete[]` of jemalloc's `new[]` (abort), jemalloc's aligned `delete` of a block
// from the tracer's `aligned_alloc` (crash), `free(mallocx(...))` and `sdallocx(malloc(...))`.
// Leaks one 4444-byte `new[]` block and one 1234-byte `mallocx` block; prints "ok".
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

extern "C" {
void *mallocx(size_t size, int flags);
void *rallocx(void *ptr, size_t size, int flags);
size_t xallocx(void *ptr, size_t size, size_t extra, int flags);
size_t sallocx(const void *ptr, int flags);
void dallocx(void *ptr, int flags);
void sdallocx(void *ptr, size_t size, int flags);
size_t nallocx(size_t size, int flags);
}
#define MALLOCX_LG_ALIGN(la) ((int)(la))
#define MALLOCX_ZERO ((int)0x40)

struct alignas(64) Aligned {
    char bytes[200];
};

void *volatile sink;

// VmRSS of this process, in KiB.
static long resident_kib() {
    FILE *status = std::fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (status && std::fgets(line, sizeof line, status))
        if (std::sscanf(line, "VmRSS: %ld", &kib) == 1) break;
    if (status) std::fclose(status);
    return kib;
}

int main() {
    for (int i = 0; i < 1000; i++) {
        int *numbers = new int[10 + i];
        numbers[i] = i;
        sink = numbers;
        delete[] numbers;
        Aligned *aligned = new Aligned;
        if (reinterpret_cast<size_t>(aligned) % 64 != 0) return 2;
        sink = aligned;
        delete aligned;
    }
    for (int i = 0; i < 100; i++) {
        free(mallocx(100 + i, 0));
        sdallocx(malloc(50 + i), 50 + i, 0);
        char *zeroed = static_cast<char *>(mallocx(300, MALLOCX_ZERO));
        for (int k = 0; k < 300; k++)
            if (zeroed[k] != 0) return 3;
        char *grown = static_cast<char *>(rallocx(zeroed, 5000, MALLOCX_LG_ALIGN(6)));
        if (!grown || reinterpret_cast<size_t>(grown) % 64 != 0 || sallocx(grown, 0) < 5000) return 4;
        if (xallocx(grown, 6000, 0, 0) < 5000 || nallocx(77, 0) < 77) return 5;
        dallocx(grown, 0);
    }
    // Zeroed blocks of 1 GiB stay unresident, as with jemalloc: the tracer's mallocx(ZERO) and
    // rallocx(ZERO) wrote the zeros and made every page resident.
    char *huge = static_cast<char *>(mallocx(size_t(1) << 30, MALLOCX_ZERO));
    huge = static_cast<char *>(rallocx(huge, size_t(3) << 29, MALLOCX_ZERO));
    if (!huge || resident_kib() > 256 * 1024) return 6;
    dallocx(huge, 0);
    sink = mallocx(1234, 0);
    sink = new char[4444];
    sink = nullptr;
    std::puts("ok");
    return 0;
}
