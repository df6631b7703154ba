//! The bundled leaky program the demo watches: a request loop that keeps 64 KiB per "request"
//! (the leak) under a sawtooth of short-lived buffers (temporaries freed every ten requests).

use std::time::{Duration, Instant};

/// Bytes kept forever per request: the leak (3.2 MiB/s at 50 requests per second).
const LEAK_PER_REQUEST: usize = 64 * 1024;
/// Bytes of temporaries per request, all freed every `TEMPORARIES_KEPT` requests.
const TEMPORARY_PER_REQUEST: usize = 512 * 1024;
const TEMPORARIES_KEPT: usize = 10;
const REQUEST_EVERY: Duration = Duration::from_millis(20);
/// The program ends by itself after this long, in case nobody stops it.
const LIFETIME: Duration = Duration::from_secs(120);

/// Runs the leaky loop until `LIFETIME` passes (the demo stops it much earlier).
pub fn run() {
    let started = Instant::now();
    let mut leaked: Vec<Vec<u8>> = Vec::new();
    let mut temporaries: Vec<Vec<u8>> = Vec::new();
    let mut request: u8 = 0;
    while started.elapsed() < LIFETIME {
        request = request.wrapping_add(1);
        // Non-zero fill so every page is really touched (zeroed pages may stay unbacked).
        leaked.push(vec![request | 1; LEAK_PER_REQUEST]);
        temporaries.push(vec![request | 1; TEMPORARY_PER_REQUEST]);
        if temporaries.len() >= TEMPORARIES_KEPT {
            temporaries.clear();
        }
        std::hint::black_box((&leaked, &temporaries));
        std::thread::sleep(REQUEST_EVERY);
    }
}
