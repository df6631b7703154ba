// A program that replaces only `operator new(size_t)` and `operator delete(void*)`, as C++
// allows: the C++ runtime's other forms (sized and array delete, new[], nothrow new) call these.
// The tracer defines every form, and its own ones served this program's sized `delete` from the
// hooks' `free`, skipping the replacement: glibc aborted ("free(): invalid size"). They now go on
// to the runtime's. Prints the replacement's counts, the same with the tool or without.
#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

static std::size_t news, deletes;

struct Header {
    std::size_t magic, size;
};

void *operator new(std::size_t size) {
    news++;
    Header *header = static_cast<Header *>(std::malloc(sizeof(Header) + size));
    if (!header) throw std::bad_alloc();
    header->magic = 0xC0FFEE;
    header->size = size;
    return header + 1;
}

void operator delete(void *ptr) noexcept {
    if (!ptr) return;
    deletes++;
    Header *header = static_cast<Header *>(ptr) - 1;
    if (header->magic != 0xC0FFEE) {
        std::fprintf(stderr, "not a block of ours: %p\n", ptr);
        std::abort();
    }
    std::free(header);
}

struct Node {
    int value;
    Node *next;
};

int main() {
    Node *node = new Node{1, nullptr};
    delete node;  // sized delete
    std::vector<std::string> strings;
    for (int i = 0; i < 100; i++) strings.push_back(std::string(40, 'x'));
    int *numbers = new int[10];
    delete[] numbers;
    Node *other = new (std::nothrow) Node{2, nullptr};
    delete other;
    std::printf("news=%zu deletes=%zu\n", news, deletes);
    return 0;
}
