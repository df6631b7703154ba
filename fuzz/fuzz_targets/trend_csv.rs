//! Fuzzes the series readers (CSV, psrecord, mprof, Prometheus JSON) and the verdict behind `leaksift trend`: arbitrary bytes must give
//! a series and an analysis, or a typed error naming the line, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(imported) = leaksift_watch::import::read_series(&text, None) {
        let series = imported.series;
        let config = leaksift_stats::Config::default();
        let _ =
            leaksift_stats::analyze_with_breaks(&series.t, &series.bytes, &series.breaks, &config);
    }
});
