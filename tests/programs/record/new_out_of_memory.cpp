// operator new when memory runs out: the tracer's operator new cannot throw, so it goes on to
// the C++ runtime's, which must call the new-handler and throw std::bad_alloc as without the
// tool (a nothrow new returns null). Prints what happened; the output is the same either way.
#include <cstdio>
#include <new>

static int handler_calls = 0;

static void handler() {
    handler_calls++;
    std::set_new_handler(nullptr);
}

struct alignas(128) Aligned {
    char bytes[64];
};

int main() {
    try {
        char *p = new char[1ULL << 60];
        std::printf("no exception %p\n", static_cast<void *>(p));
    } catch (const std::bad_alloc &) {
        std::puts("new[]: bad_alloc");
    }
    std::set_new_handler(handler);
    try {
        int *p = new int(3);
        delete p;
        long *q = new long[1ULL << 59];
        std::printf("no exception %p\n", static_cast<void *>(q));
    } catch (const std::bad_alloc &) {
        std::printf("new: bad_alloc after %d new-handler call(s)\n", handler_calls);
    }
    char *nothrow = new (std::nothrow) char[1ULL << 60];
    std::printf("nothrow new: %s\n", nothrow ? "a block" : "null");
    try {
        Aligned *a = new Aligned[1ULL << 55];
        std::printf("no exception %p\n", static_cast<void *>(a));
    } catch (const std::bad_alloc &) {
        std::puts("aligned new[]: bad_alloc");
    }
    return 0;
}
