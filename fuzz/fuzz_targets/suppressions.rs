//! Fuzzes the LeakSanitizer suppressions reader behind `leaksift report --suppressions`:
//! arbitrary text must parse or fail with a line number, and every pattern must match against
//! arbitrary names without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match leaksift_native::suppress::Suppressions::parse(&text) {
        Ok(suppressions) => {
            for pattern in suppressions.patterns() {
                for name in text.lines() {
                    let _ = leaksift_native::suppress::template_match(pattern, name);
                }
            }
        }
        Err(error) => assert!(error.line >= 1),
    }
});
