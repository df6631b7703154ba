// Built twice. With -DLIBRARY: a library replacing the global operators with a header-checking
// allocator, linked with -Bsymbolic-functions (its own calls bind to its own operators), whose
// static constructor makes a `new` fail and catches std::bad_alloc (it runs before the tracer's
// constructor). Without: a program whose `delete` frees what the library's `new` made. The
// tracer's operators once took over the program's `delete` (an abort), and its failed `new` in
// the static constructor aborted the process instead of throwing. Prints the same with the
// tool or without.
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <new>

struct Widget {
    int values[10];
};

#ifdef LIBRARY
struct Header {
    std::size_t magic, size;
};

static std::size_t live;

void *operator new(std::size_t size) {
    Header *header = static_cast<Header *>(std::malloc(sizeof(Header) + size));
    if (!header) throw std::bad_alloc();
    header->magic = 0xABCD;
    header->size = size;
    live += size;
    return header + 1;
}
void *operator new[](std::size_t size) { return ::operator new(size); }
void operator delete(void *ptr) noexcept {
    if (!ptr) return;
    Header *header = static_cast<Header *>(ptr) - 1;
    if (header->magic != 0xABCD) {
        std::fprintf(stderr, "library: not a block of ours: %p\n", ptr);
        std::abort();
    }
    live -= header->size;
    std::free(header);
}
void operator delete[](void *ptr) noexcept { ::operator delete(ptr); }
void operator delete(void *ptr, std::size_t) noexcept { ::operator delete(ptr); }
void operator delete[](void *ptr, std::size_t) noexcept { ::operator delete(ptr); }

extern "C" std::size_t library_live_bytes() { return live; }
Widget *make_widget() { return new Widget(); }

static volatile std::size_t huge = std::size_t(1) << 46;
static struct StaticInit {
    StaticInit() {
        try {
            char *volatile block = static_cast<char *>(std::malloc(1));
            std::free(block);
            int *volatile numbers = new (std::align_val_t(64)) int[huge / 4];
            std::printf("static init: no exception %p\n", static_cast<void *>(numbers));
        } catch (const std::bad_alloc &) {
            std::puts("static init: bad_alloc caught");
        }
    }
} static_init;
#else
extern "C" std::size_t library_live_bytes();
Widget *make_widget();

int main() {
    Widget *widget = make_widget();
    std::printf("live in the library: %zu\n", library_live_bytes());
    delete widget;
    std::printf("live in the library after delete: %zu\n", library_live_bytes());
    return 0;
}
#endif
