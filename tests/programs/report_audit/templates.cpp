// report_audit: C++ stacks through templates, lambdas, an inlined helper and threads, with
// known counts (see crates/leaksift/tests/report_oracle.rs).
//  - Pool<Widget>::make() x 7 and Pool<double>::make() x 5 from main (template instances).
//  - a lambda allocating 3 blocks of 40 bytes through an always-inlined helper.
//  - 4 threads each allocating 10 blocks of 24 bytes in worker(int), all freed.
//  - leaked: the 7 Widgets (7 * sizeof(Widget) = 7 * 64 bytes) and the 3 lambda blocks.
#include <thread>
#include <vector>

struct Widget {
    char payload[64];
};

template <typename T>
struct Pool {
    __attribute__((noinline)) static T *make() { return new T(); }
};

static inline __attribute__((always_inline)) char *inlined_helper(unsigned n) {
    return new char[n];
}

__attribute__((noinline)) void worker(int id) {
    std::vector<int *> blocks;
    blocks.reserve(10);
    for (int i = 0; i < 10; i++) blocks.push_back(new int[6]);
    for (int *b : blocks) delete[] b;
    (void)id;
}

char *volatile sink;

int main() {
    for (int i = 0; i < 7; i++) {
        Widget *volatile w = Pool<Widget>::make();
        (void)w;
    }
    for (int i = 0; i < 5; i++) delete Pool<double>::make();
    auto lambda = [](int n) {
        for (int i = 0; i < n; i++) sink = inlined_helper(40);
    };
    lambda(3);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; t++) threads.emplace_back(worker, t);
    for (auto &t : threads) t.join();
    sink = nullptr;
    return 0;
}
