/* Initial-exec thread-locals for the allocation hooks.
 *
 * Rust's `thread_local!` in a cdylib uses the general-dynamic TLS model, whose first access per
 * thread goes through __tls_get_addr, which may call malloc: an allocation hook that touched it
 * would recurse (bytehound issue #131). Initial-exec TLS is a fixed offset from the thread
 * pointer: no call, no allocation. Keep it to these 16 bytes: static TLS space is scarce and a
 * large initial-exec block can make later dlopen of STATIC_TLS libraries fail. */
#include <stdint.h>

/* Hidden: called directly, not through the GOT, and never interposed. */
#define LEAKSIFT_INTERNAL __attribute__((visibility("hidden")))

/* One block, so that Rust can reach both words at a fixed offset from the thread pointer. */
struct leaksift_tls {
    void *thread_state;
    uint32_t busy;
};

static __thread __attribute__((tls_model("initial-exec"))) struct leaksift_tls leaksift_tls;

/* The calling thread's block. Initial-exec TLS sits at the same offset from the thread pointer
 * in every thread, so Rust computes that offset once and then uses %fs-relative accesses. */
LEAKSIFT_INTERNAL struct leaksift_tls *leaksift_tls_address(void) { return &leaksift_tls; }

/* Marks the calling thread as inside the tracer. Returns 1 if it was not already inside
 * (the caller must then call leaksift_leave), 0 if this is a re-entrant call. */
LEAKSIFT_INTERNAL int leaksift_enter(void) {
    if (leaksift_tls.busy) return 0;
    leaksift_tls.busy = 1;
    return 1;
}

LEAKSIFT_INTERNAL void leaksift_leave(void) { leaksift_tls.busy = 0; }

LEAKSIFT_INTERNAL void *leaksift_get_thread_state(void) { return leaksift_tls.thread_state; }

LEAKSIFT_INTERNAL void leaksift_set_thread_state(void *state) { leaksift_tls.thread_state = state; }
