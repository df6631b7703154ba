// C++ functions with internal linkage, which gcc's DWARF names by their bare name only (no
// DW_AT_linkage_name): two `make`s in an anonymous namespace and two lambdas' `operator()`.
#include <cstdlib>

namespace {
struct Alpha {
    __attribute__((noipa)) static void *make(int n) { return malloc(n); }
};
struct Beta {
    __attribute__((noipa)) static void *make(int n) { return malloc(n + 100); }
};
}  // namespace

int main(int argc, char **) {
    void *volatile kept;
    kept = Alpha::make(argc + 1);
    kept = Beta::make(argc + 1);
    auto first = [](int n) __attribute__((noipa)) { return malloc(n + 200); };
    auto second = [](int n) __attribute__((noipa)) { return malloc(n + 300); };
    kept = first(argc);
    kept = second(argc);
    kept = nullptr;
    return 0;
}
