//! Human formatting of byte counts, rates and durations.

/// Formats a byte count with binary units, e.g. `1.50 MiB`. Negative values keep their sign;
/// a value that is not a number is `n/a`, one beyond the units (only hostile input gets there)
/// is written with an exponent.
pub fn bytes(value: f64) -> String {
    const UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    if value.is_nan() {
        return "n/a".to_string();
    }
    let sign = if value < 0.0 { "-" } else { "" };
    let mut magnitude = value.abs();
    let mut unit = 0;
    while magnitude >= 1024.0 && unit + 1 < UNITS.len() {
        magnitude /= 1024.0;
        unit += 1;
    }
    if magnitude >= 1024.0 {
        return format!("{sign}{:.2e} B", value.abs());
    }
    if unit == 0 {
        format!("{sign}{magnitude:.0} B")
    } else {
        format!("{sign}{magnitude:.2} {}", UNITS[unit])
    }
}

/// Formats a change in bytes with its sign, e.g. `+1.50 MiB`, `-12 B`, `0 B`.
pub fn signed_bytes(delta: i128) -> String {
    let sign = if delta > 0 { "+" } else { "" };
    format!("{sign}{}", bytes(delta as f64))
}

/// Formats a duration in seconds as the largest sensible unit, e.g. `3.2 h`, `45 s`, `12 ms`.
pub fn duration(seconds: f64) -> String {
    let s = seconds.abs();
    let sign = if seconds < 0.0 { "-" } else { "" };
    if !s.is_finite() {
        "∞".to_string()
    } else if s >= 86_400.0 * 1e6 {
        // A million days and more: only hostile or mistaken inputs (e.g. a time column in
        // nanoseconds read as seconds); all their digits would fill the screen.
        format!("{sign}{:.2e} d", s / 86_400.0)
    } else if s >= 86_400.0 {
        format!("{sign}{:.1} d", s / 86_400.0)
    } else if s >= 3_600.0 {
        format!("{sign}{:.1} h", s / 3_600.0)
    } else if s >= 60.0 {
        format!("{sign}{:.1} min", s / 60.0)
    } else if s >= 1.0 {
        format!("{sign}{s:.1} s")
    } else {
        format!("{sign}{:.0} ms", s * 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_bytes() {
        assert_eq!(bytes(0.0), "0 B");
        assert_eq!(bytes(1023.0), "1023 B");
        assert_eq!(bytes(1536.0), "1.50 KiB");
        assert_eq!(bytes(-3.0 * 1024.0 * 1024.0), "-3.00 MiB");
        assert_eq!(bytes(u64::MAX as f64), "16.00 EiB");
        assert_eq!(bytes(f64::NAN), "n/a");
        assert_eq!(bytes(1.5e300), "1.50e300 B");
        assert_eq!(bytes(f64::NEG_INFINITY), "-inf B");
    }

    #[test]
    fn formats_durations() {
        assert_eq!(duration(0.012), "12 ms");
        assert_eq!(duration(45.0), "45.0 s");
        assert_eq!(duration(7200.0), "2.0 h");
        assert_eq!(duration(f64::INFINITY), "∞");
        assert_eq!(duration(86_400.0 * 2.5e6), "2.50e6 d");
        assert_eq!(duration(-86_400.0 * 2.5e200), "-2.50e200 d");
    }
}
