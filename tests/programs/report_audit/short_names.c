/* report_audit: C functions whose names are also Itanium C++ type codes (`b` = bool, `i` = int,
 * `f` = float): a demangler given every name reads them as types. b() allocates twice, i() and
 * f() once each, all leaked (see report_oracle.rs). */
#include <stdlib.h>

void *volatile keep[4];

__attribute__((noinline)) void *b(void) { return malloc(11); }
__attribute__((noinline)) void *i(void) { return malloc(22); }
__attribute__((noinline)) void *f(void) { return malloc(33); }

int main(void) {
    keep[0] = b();
    keep[1] = b();
    keep[2] = i();
    keep[3] = f();
    return 0;
}
