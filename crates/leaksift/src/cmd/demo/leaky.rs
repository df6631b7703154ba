//! The bundled leaky program the demo watches: a request loop that keeps 64 KiB per "request"
//! (the leak) under a sawtooth of short-lived buffers (temporaries freed every ten requests).
//!
//! The leak is the most common kind in real services: a global cache that is filled and never
//! pruned. Its blocks stay reachable from a global, so at exit memcheck (and `leaksift report`)
//! class them as "still reachable"; what gives them away is that their call site's live bytes
//! grow for the whole run ("growth by call site").

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Bytes kept forever per request: the leak (3.2 MiB/s at 50 requests per second).
const LEAK_PER_REQUEST: usize = 64 * 1024;
/// Bytes of temporaries per request, all freed every `TEMPORARIES_KEPT` requests.
const TEMPORARY_PER_REQUEST: usize = 512 * 1024;
const TEMPORARIES_KEPT: usize = 10;
const REQUEST_EVERY: Duration = Duration::from_millis(20);

/// The response cache that is never pruned: the leak.
static RESPONSE_CACHE: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// Runs the leaky loop for `lifetime`, then returns (the cache is never freed).
pub fn run(lifetime: Duration) {
    let started = Instant::now();
    let mut temporaries: Vec<Vec<u8>> = Vec::new();
    let mut request: u8 = 0;
    while started.elapsed() < lifetime {
        request = request.wrapping_add(1);
        remember_response(request);
        temporaries.push(vec![request | 1; TEMPORARY_PER_REQUEST]);
        if temporaries.len() >= TEMPORARIES_KEPT {
            temporaries.clear();
        }
        std::hint::black_box(&temporaries);
        std::thread::sleep(REQUEST_EVERY);
    }
}

/// Caches one response forever. Not inlined, so the demo's report names this function.
#[inline(never)]
fn remember_response(request: u8) {
    // Non-zero fill so every page is really touched (zeroed pages may stay unbacked).
    let response = vec![request | 1; LEAK_PER_REQUEST];
    RESPONSE_CACHE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .push(response);
}
