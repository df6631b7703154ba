// C++ allocation paths reach malloc/free: new, new[], delete, delete[], std::string, std::vector.
#include <cstdio>
#include <string>
#include <vector>

void *volatile sink;

__attribute__((noinline)) void cxx_allocations() {
    int *one = new int(7);
    sink = one;
    delete one;
    char *array = new char[34567];
    sink = array;
    delete[] array;
    std::vector<long> numbers(4321);
    sink = numbers.data();
    std::string text(5000, 'x');
    sink = &text[0];
}

int main() {
    cxx_allocations();
    sink = new char[3333];  // leaked through a global: still reachable
    std::puts("cxx done");
    return 0;
}
