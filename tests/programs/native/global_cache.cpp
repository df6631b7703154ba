// A C++ program whose global cache grows for the whole run and is freed by its destructor after
// `main` returns: at the end nothing is live and nothing is lost, yet the cache's call site grew
// all along. Each request keeps 64 KiB at `remember` and churns a 4 KiB scratch buffer.
// Usage: global_cache [REQUESTS [clear]] (default 150 requests, 10 ms apart). With `clear`, main
// empties the cache itself and idles 1 s before returning: memory given back, no leak.
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

static std::vector<std::unique_ptr<char[]>> cache;

__attribute__((noinline)) static void remember(int request) {
    auto entry = std::make_unique<char[]>(65536); // line:remember
    std::memset(entry.get(), request | 1, 65536);
    cache.push_back(std::move(entry));
}

__attribute__((noinline)) static void handle(int request) {
    auto scratch = std::make_unique<char[]>(4096);
    std::memset(scratch.get(), request, 4096);
    remember(request);
}

int main(int argc, char **argv) {
    int requests = argc > 1 ? std::atoi(argv[1]) : 150;
    for (int i = 0; i < requests; i++) {
        handle(i);
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (argc > 2 && std::strcmp(argv[2], "clear") == 0) {
        cache.clear();
        std::this_thread::sleep_for(std::chrono::seconds(1));
    }
    return 0;
}
