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

static __thread __attribute__((tls_model("initial-exec"))) uint32_t leaksift_busy;
static __thread __attribute__((tls_model("initial-exec"))) void *leaksift_thread_state;

/* Marks the calling thread as inside the tracer. Returns 1 if it was not already inside
 * (the caller must then call leaksift_leave), 0 if this is a re-entrant call. */
LEAKSIFT_INTERNAL int leaksift_enter(void) {
    if (leaksift_busy) return 0;
    leaksift_busy = 1;
    return 1;
}

LEAKSIFT_INTERNAL void leaksift_leave(void) { leaksift_busy = 0; }

LEAKSIFT_INTERNAL void *leaksift_get_thread_state(void) { return leaksift_thread_state; }

LEAKSIFT_INTERNAL void leaksift_set_thread_state(void *state) { leaksift_thread_state = state; }
