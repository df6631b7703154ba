//! Flags shared by `watch`, `trend` and `check`: the verdict thresholds, and parsers for sizes
//! (`64MiB`, `10k`) and durations (`500ms`, `2s`, `1m`).

use std::time::Duration;

use leaksift_stats::Config;

/// Thresholds of the leak verdict (defaults and their reasons: docs/ARCHITECTURE.md).
#[derive(Debug, Clone, clap::Args)]
pub struct Thresholds {
    /// Significance level of the one-sided Mann–Kendall test for growth.
    #[arg(long, value_name = "P", default_value_t = 0.01, value_parser = parse_significance)]
    pub alpha: f64,
    /// Number of baseline windows (each keeps its minimum; longer windows absorb longer GC cycles).
    #[arg(long, value_name = "N", default_value_t = 30, value_parser = clap::value_parser!(u32).range(2..))]
    pub windows: u32,
    /// Growth over the observed span below this is never a leak.
    #[arg(long, value_name = "BYTES", default_value = "256KiB", value_parser = parse_bytes)]
    pub min_growth: u64,
    /// A growth whose last quarter grows slower than this fraction of the overall slope is a plateau.
    #[arg(long, value_name = "R", default_value_t = 0.3, value_parser = parse_probability)]
    pub tail_ratio: f64,
    /// A drop below this fraction of the recent baseline is a restart (0 disables restart detection).
    #[arg(long, value_name = "F", default_value_t = 0.5, value_parser = parse_probability)]
    pub restart_drop: f64,
}

impl Thresholds {
    /// The statistics configuration these flags describe.
    pub fn config(&self, limit: Option<u64>) -> Config {
        Config {
            alpha: self.alpha,
            windows: self.windows as usize,
            min_growth_bytes: self.min_growth as f64,
            tail_ratio: self.tail_ratio,
            restart_drop: (self.restart_drop > 0.0).then_some(self.restart_drop),
            limit: limit.map(|l| l as f64),
            ..Config::default()
        }
    }
}

/// A probability or fraction in [0, 1].
pub fn parse_probability(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("expected a number between 0 and 1, found {text:?}")),
    }
}

/// A significance level, strictly between 0 and 1 (0 would call nothing significant, 1
/// everything).
pub fn parse_significance(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v > 0.0 && v < 1.0 => Ok(v),
        _ => Err(format!(
            "expected a significance level above 0 and below 1, found {text:?}"
        )),
    }
}

/// A byte count with an optional suffix: `k`/`KB` (1000), `KiB` (1024), `M`, `MiB`, `G`, `GiB`,
/// `T`, `TiB`; `B` alone is bytes. Fractions are allowed (`1.5GiB`).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let (value, suffix) = split_number(text, "a size like 512MiB or 10k")?;
    let scale = leaksift_watch::size::unit_scale(suffix)
        .ok_or_else(|| format!("unknown size suffix {suffix:?} in {text:?}"))?;
    let too_large = || format!("size {text:?} is too large");
    // A whole number of a whole unit is exact (`18446744073709551615` is the largest); a
    // fraction goes through f64, where 2^64 is the first value that does not fit (`as u64`
    // would clamp it to the largest rather than refuse it).
    let whole = text.trim().trim_end_matches(suffix).trim_end();
    if let (Ok(count), true) = (whole.parse::<u128>(), scale.fract() == 0.0) {
        return count
            .checked_mul(scale as u128)
            .and_then(|bytes| u64::try_from(bytes).ok())
            .ok_or_else(too_large);
    }
    let bytes = value * scale;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(too_large());
    }
    Ok(bytes.round() as u64)
}

/// A duration: a number with `ms`, `s`, `m`/`min`, `h` (a bare number is seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (value, suffix) = split_number(text, "a duration like 500ms, 2s or 1m")?;
    let seconds = match suffix {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => return Err(format!("unknown duration unit {other:?} in {text:?}")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("duration {text:?} is out of range"))
}

/// Splits `"1.5GiB"` into `(1.5, "GiB")` (the suffix trimmed); `expected` describes valid input.
fn split_number<'a>(text: &'a str, expected: &str) -> Result<(f64, &'a str), String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, suffix) = t.split_at(split);
    let value = number
        .parse()
        .map_err(|_| format!("expected {expected}, found {text:?}"))?;
    Ok((value, suffix.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("64MiB"), Ok(64 << 20));
        assert_eq!(parse_bytes("10k"), Ok(10_000));
        assert_eq!(parse_bytes("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("2 MB"), Ok(2_000_000));
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("5XB").is_err());
        assert!(parse_bytes("1e400").is_err());
        assert_eq!(parse_bytes("18446744073709551615"), Ok(u64::MAX));
        assert!(
            parse_bytes("18446744073709551616").is_err(),
            "2^64 is refused, not clamped"
        );
        assert!(parse_bytes("16EiB").is_err());
        assert!(parse_bytes("99999999999999999999999").is_err());
        assert!(parse_bytes("17179869184.5GiB").is_err());
    }

    #[test]
    fn significance_levels_exclude_0_and_1() {
        assert_eq!(parse_significance("0.05"), Ok(0.05));
        for bad in ["0", "1", "-0.1", "1.5", "NaN", "x"] {
            assert!(parse_significance(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("1d").is_err());
    }
}
