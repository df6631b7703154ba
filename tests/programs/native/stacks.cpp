// A leak through operator new inside a namespaced class method, for demangled-name checks.
#include <cstddef>
#include <cstring>

namespace shapes {

struct Widget {
    char payload[72];
};

class Factory {
  public:
    __attribute__((noinline)) static Widget *create(int id) {
        Widget *widget = new Widget; // line:create
        std::memset(widget->payload, id, sizeof widget->payload);
        return widget;
    }
};

} // namespace shapes

__attribute__((noinline)) void build_and_forget(int id) {
    shapes::Widget *widget = shapes::Factory::create(id); // line:build_and_forget
    widget->payload[0] = 1;
}

int main() {
    build_and_forget(7); // line:main
    return 0;
}
