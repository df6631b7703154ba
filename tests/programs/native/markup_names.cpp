// A function whose demangled name contains markup (`make<script>()`), to check that rendered
// reports (flamegraph SVG) escape names taken from binaries.
struct script {
    char bytes[24];
};

template <typename T> __attribute__((noinline)) T *make() {
    return new T(); // line:make
}

int main() {
    script *leaked = make<script>();
    leaked->bytes[0] = 1;
    return 0;
}
