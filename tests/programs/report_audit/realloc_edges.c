/* report_audit: realloc edge cases with known outcomes (see report_oracle.rs).
 *  - realloc(NULL, 100): an allocation of 100 bytes (kept: `kept`, still reachable).
 *  - realloc(p, 0) on a 200-byte block: glibc frees it and returns NULL (no block remains).
 *  - a realloc that fails (size too large) returns NULL and leaves its 300-byte block
 *    untouched: the block stays live (still reachable through `survivor`).
 * At exit: 2 blocks (100 + 300 bytes), both still reachable; nothing lost. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

void *volatile kept;
void *volatile survivor;

int main(void) {
    kept = realloc(NULL, 100);
    void *volatile gone = malloc(200);
    gone = realloc(gone, 0);
    survivor = malloc(300);
    void *volatile failed = realloc(survivor, SIZE_MAX - 4096);
    if (failed != NULL || gone != NULL) return 3;
    return 0;
}
