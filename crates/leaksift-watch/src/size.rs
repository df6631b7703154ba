//! Byte-size units as people and tools write them (`KB` = 1000, `KiB` = 1024, ...): shared by the
//! CLI's size flags and the series readers, whose values may carry a unit (`1.5 GiB`).

/// The number of bytes in one `unit`, case-insensitive: `""`/`B`, `k`/`KB` (10^3), `Ki`/`KiB`
/// (2^10), and the same for `M`, `G`, `T`; `None` for anything else.
pub fn unit_scale(unit: &str) -> Option<f64> {
    const KIB: f64 = 1024.0;
    Some(match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "ki" | "kib" => KIB,
        "m" | "mb" => 1e6,
        "mi" | "mib" => KIB * KIB,
        "g" | "gb" => 1e9,
        "gi" | "gib" => KIB * KIB * KIB,
        "t" | "tb" => 1e12,
        "ti" | "tib" => KIB * KIB * KIB * KIB,
        _ => return None,
    })
}

/// Splits `text` into its leading number and the rest (trimmed): `"1.5 GiB"` → `(1.5, "GiB")`.
/// `None` when it does not start with a finite number.
pub fn split_number(text: &str) -> Option<(f64, &str)> {
    let text = text.trim();
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E')))
        .unwrap_or(text.len());
    // An exponent marker belongs to the number only when digits follow ("1e3", not "1 EiB"
    // — which has a space — or "2E" alone).
    let (mut number, mut rest) = text.split_at(end);
    while number.ends_with(['e', 'E', '+', '-']) {
        let cut = number.len() - 1;
        (number, rest) = text.split_at(cut);
    }
    let value = number.parse::<f64>().ok().filter(|v| v.is_finite())?;
    Some((value, rest.trim()))
}

/// A size with an optional unit (`512MiB`, `1.5 GB`, `4096`), in bytes; `None` if it is not one.
pub fn parse_size(text: &str) -> Option<f64> {
    let (value, unit) = split_number(text)?;
    let bytes = value * unit_scale(unit)?;
    bytes.is_finite().then_some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_tools_write_them() {
        assert_eq!(parse_size("4096"), Some(4096.0));
        assert_eq!(parse_size("1.5 GiB"), Some(1.5 * 1024.0 * 1024.0 * 1024.0));
        assert_eq!(parse_size("512MB"), Some(512e6));
        assert_eq!(parse_size("100 kB"), Some(100e3));
        assert_eq!(parse_size("1e3"), Some(1000.0));
        assert_eq!(parse_size("2e3 KiB"), Some(2048e3));
        assert_eq!(parse_size(" 7 B "), Some(7.0));
        assert_eq!(parse_size("-3"), Some(-3.0));
        for bad in [
            "",
            "GiB",
            "12 parsecs",
            "NaN",
            "inf",
            "1.2.3",
            "e5",
            "1e999",
        ] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }
}
