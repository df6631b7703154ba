/* A leak from a function whose symbol name holds control characters (SOH, an ESC colour
 * sequence, DEL), run with arguments holding an ESC sequence and a space: the flamegraph must
 * stay well-formed XML and the text report must show the command quoted and escaped. */
#include <stdlib.h>

__attribute__((noinline)) void *odd_name(int n) __asm__("\"odd\x01\x1b[31mred\x7f\"");
__attribute__((noinline)) void *odd_name(int n) { return malloc(n); }

void *volatile sink;

int main(void) {
    sink = odd_name(48);
    sink = 0;
    return 0;
}
