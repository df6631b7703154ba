// Blocks lost inside a called function, after which main returns (or, with a second argument,
// a nested function calls exit). The allocation path leaves the blocks' addresses in stack
// slots below main (libstdc++'s operator new saves a register holding the previous block,
// glibc's malloc spills, the tracer's own hooks), and glibc's exit path later builds frames over
// those slots without writing all of them. memcheck never reads such slots (they are undefined
// to it), so for it every block here is lost. The shape of `lose` (several modes, two blocks
// kept in registers) is the one that showed the problem: with g++ 12 -O1, a copy of the first
// block's address ended up in a slot of glibc's `__run_exit_handlers` frame.
// Usage: lost_after_return MODE [exit]
//   1: a cycle of two `new` blocks (1 definitely + 1 indirectly lost, 72 bytes each)
//   2: the same cycle from malloc
//   3: posix_memalign(64, 333) and aligned_alloc(4096, 8192) (2 definitely lost)
#include <cstdlib>
#include <cstring>
#include <new>

struct Node {
    Node *next;
    char pad[64];
};

__attribute__((noinline)) void lose(int mode) {
    if (mode == 1) {
        Node *a = new Node;
        Node *b = new Node;
        a->next = b;
        b->next = a;
        __asm__ volatile("" ::"r"(a), "r"(b) : "memory");
    }
    if (mode == 2) {
        Node *a = static_cast<Node *>(std::malloc(sizeof(Node)));
        Node *b = static_cast<Node *>(std::malloc(sizeof(Node)));
        a->next = b;
        b->next = a;
        __asm__ volatile("" ::"r"(a), "r"(b) : "memory");
    }
    if (mode == 3) {
        void *p = nullptr;
        if (posix_memalign(&p, 64, 333) != 0) std::abort();
        void *q = aligned_alloc(4096, 8192);
        __asm__ volatile("" ::"r"(p), "r"(q) : "memory");
    }
}

__attribute__((noinline)) void finish_with_exit() { std::exit(0); }

int main(int argc, char **argv) {
    lose(argc > 1 ? std::atoi(argv[1]) : 1);
    if (argc > 2 && std::strcmp(argv[2], "exit") == 0) finish_with_exit();
    return 0;
}
