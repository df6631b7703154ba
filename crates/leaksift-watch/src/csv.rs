//! The series CSV: writing `watch --out` files and reading any CSV with `t` and `bytes` columns
//! (what `trend` accepts).

use std::borrow::Cow;
use std::io::Write;

use crate::Sample;

/// Columns of `watch --out`, documented in docs/json.md ("watch, trend, check").
pub const HEADER: &str = "t,bytes,rss,anon,file,swap,pss,uss,limit,oom_kills,pid,processes";

/// Writes the header line.
pub fn write_header(out: &mut impl Write) -> std::io::Result<()> {
    writeln!(out, "{HEADER}")
}

/// Writes one sample; absent values are empty fields.
pub fn write_row(out: &mut impl Write, s: &Sample) -> std::io::Result<()> {
    fn opt(v: Option<impl std::fmt::Display>) -> String {
        v.map(|v| v.to_string()).unwrap_or_default()
    }
    writeln!(
        out,
        "{:.6},{},{},{},{},{},{},{},{},{},{},{}",
        s.t,
        s.bytes,
        opt(s.rss),
        opt(s.anon),
        opt(s.file),
        opt(s.swap),
        opt(s.pss),
        opt(s.uss),
        opt(s.limit),
        opt(s.oom_kills),
        opt(s.pid),
        opt(s.processes)
    )
}

/// A series read from CSV.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series {
    pub t: Vec<f64>,
    pub bytes: Vec<f64>,
    /// Indices where the `pid` column (if any) changes: restarts.
    pub breaks: Vec<usize>,
    /// Whether restarts are marked (a `pid` column holding pids): then a drop without a break
    /// is not one.
    pub marks_restarts: bool,
    /// The last non-empty `limit` column value (if any).
    pub limit: Option<f64>,
}

/// A malformed series, with the 1-based line it was found on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct CsvError {
    pub line: usize,
    pub message: String,
}

/// The largest `bytes` or `limit` magnitude a series may hold: 2^64.
pub(crate) const MAX_BYTES: f64 = 18_446_744_073_709_551_616.0;

fn err(line: usize, message: impl Into<String>) -> CsvError {
    CsvError {
        line,
        message: message.into(),
    }
}

/// A series read from a CSV, with the header of the column its bytes came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    pub series: Series,
    pub value_column: String,
}

/// Header names taken as the time column when there is no `t` column (seconds): Grafana's panel
/// export calls it `Time`, spreadsheets and other exporters `timestamp` or `date`.
const TIME_COLUMNS: [&str; 4] = ["time", "timestamp", "date", "datetime"];

/// Parses a series from a CSV: blank lines and lines starting with `#` are skipped, and so is an
/// Excel `sep=X` line (which also sets the separator); the first other line is the header (fields
/// may be double-quoted).
///
/// - Time: a `t` column is seconds; otherwise a column named as in [`TIME_COLUMNS`] holds dates
///   (RFC 3339, or `YYYY-MM-DD HH:MM:SS[.f]` with an optional ` UTC`; a date without an offset is
///   read as UTC, so only a daylight-saving change inside the series can shift it) or Unix times
///   in s, ms, µs or ns (told apart by magnitude), and `t` counts seconds from the first row.
///   `t` must not decrease.
/// - Bytes: the column named `value_column` (case-insensitive, else the one column whose name
///   contains it); without one, `bytes`; without that, the only column besides time, `pid` and
///   `limit`. A unit in the header (`Real (MB)`, `rss [MiB]`) scales every value, and a value
///   may carry its own (`1.5 GiB`, as Grafana's formatted export writes). Rows whose value is
///   empty (series joined by time with gaps) are skipped.
/// - `pid` (restarts where it changes) and `limit` (the last non-empty one; `max` = none) are
///   optional.
pub fn parse_table(text: &str, value_column: Option<&str>) -> Result<Table, CsvError> {
    // Spreadsheets start UTF-8 CSVs with a byte order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .peekable();
    let mut separator = ',';
    if let Some(sep) = lines
        .peek()
        .and_then(|(_, l)| l.trim().strip_prefix("sep="))
        && let Some(c) = sep.chars().next()
    {
        separator = c;
        lines.next();
    }
    let (header_line, header) = lines
        .next()
        .ok_or_else(|| err(1, "empty file: no header"))?;
    let header_fields = split_fields(header, separator);
    let names: Vec<&str> = header_fields.iter().map(|n| n.as_ref()).collect();
    let column = |name: &str| names.iter().position(|n| n.eq_ignore_ascii_case(name));
    let (t_col, time_is_seconds) = match column("t") {
        Some(c) => (c, true),
        None => (
            TIME_COLUMNS.iter().find_map(|n| column(n)).ok_or_else(|| {
                err(
                    header_line,
                    "header has no `t` column (seconds) nor a time, timestamp or date column",
                )
            })?,
            false,
        ),
    };
    let pid_col = column("pid");
    let limit_col = column("limit");
    let b_col = pick_value_column(&names, value_column, [Some(t_col), pid_col, limit_col])
        .map_err(|message| err(header_line, message))?;
    let header_scale = header_unit_scale(names[b_col]);
    let mut series = Series::default();
    let mut last_pid: Option<String> = None;
    let mut first_time: Option<f64> = None;
    for (line, row) in lines {
        let fields = split_fields(row, separator);
        let field = |col: usize, name: &str| -> Result<&str, CsvError> {
            fields
                .get(col)
                .map(|f| f.as_ref())
                .ok_or_else(|| err(line, format!("missing `{name}` field")))
        };
        let bytes_field = field(b_col, names[b_col])?;
        if bytes_field.is_empty() {
            continue;
        }
        let time_field = field(t_col, names[t_col])?;
        let t = if time_is_seconds {
            number(time_field)
                .ok_or_else(|| err(line, format!("`t` is not a number: {time_field:?}")))?
        } else {
            let absolute = timestamp_seconds(time_field).ok_or_else(|| {
                err(
                    line,
                    format!(
                        "`{}` is not a date or Unix time: {time_field:?}",
                        names[t_col]
                    ),
                )
            })?;
            absolute - *first_time.get_or_insert(absolute)
        };
        let bytes = match number(bytes_field) {
            Some(v) => v * header_scale,
            None => crate::size::parse_size(bytes_field).ok_or_else(|| {
                err(
                    line,
                    format!("`{}` is not a number: {bytes_field:?}", names[b_col]),
                )
            })?,
        };
        // No memory is larger than 2^64 bytes; such values only overflow the fit and the chart.
        if !bytes.is_finite() || bytes.abs() > MAX_BYTES {
            return Err(err(
                line,
                format!("`{}` is out of range: {bytes:e}", names[b_col]),
            ));
        }
        if bytes < 0.0 {
            return Err(err(
                line,
                format!(
                    "`{}` is negative: {bytes} (not a memory size)",
                    names[b_col]
                ),
            ));
        }
        if series.t.last().is_some_and(|&prev| t < prev) {
            return Err(err(
                line,
                format!("`{}` goes backwards ({time_field})", names[t_col]),
            ));
        }
        if let Some(pid) = pid_col
            .and_then(|c| fields.get(c))
            .filter(|p| !p.is_empty())
            && last_pid.as_deref() != Some(pid.as_ref())
        {
            if last_pid.is_some() {
                series.breaks.push(series.t.len());
            }
            last_pid = Some(pid.to_string());
        }
        // A `pid` column marks restarts once it holds a pid (an empty one tells nothing).
        series.marks_restarts |= last_pid.is_some();
        if let Some(limit) = limit_col
            .and_then(|c| fields.get(c))
            .filter(|l| !l.is_empty())
        {
            // `max` is how cgroups write "no limit".
            series.limit = match limit.parse::<f64>() {
                Ok(v) if (0.0..=MAX_BYTES).contains(&v) => Some(v),
                _ if limit.eq_ignore_ascii_case("max") => None,
                _ => {
                    return Err(err(line, format!("`limit` is not a byte count: {limit:?}")));
                }
            };
        }
        series.t.push(t);
        // `-0` is 0 bytes (it printed as -0.0 in the JSON).
        series.bytes.push(bytes + 0.0);
    }
    if series.t.is_empty() {
        return Err(err(header_line, "no samples after the header"));
    }
    Ok(Table {
        series,
        value_column: names[b_col].to_string(),
    })
}

/// A plain finite number.
fn number(field: &str) -> Option<f64> {
    field.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// The index of the bytes column (see [`parse_table`]); `others` are the columns that are not it.
fn pick_value_column(
    names: &[&str],
    wanted: Option<&str>,
    others: [Option<usize>; 3],
) -> Result<usize, String> {
    if let Some(wanted) = wanted {
        if let Some(exact) = names.iter().position(|n| n.eq_ignore_ascii_case(wanted)) {
            return Ok(exact);
        }
        let wanted_lower = wanted.to_ascii_lowercase();
        let containing: Vec<usize> = (0..names.len())
            .filter(|&i| names[i].to_ascii_lowercase().contains(&wanted_lower))
            .collect();
        return match containing[..] {
            [one] => Ok(one),
            [] => Err(format!(
                "no column matches {wanted:?} (columns: {})",
                names.join(", ")
            )),
            _ => Err(format!(
                "several columns match {wanted:?}: {}",
                listed(names, &containing)
            )),
        };
    }
    if let Some(bytes) = names.iter().position(|n| n.eq_ignore_ascii_case("bytes")) {
        return Ok(bytes);
    }
    let candidates: Vec<usize> = (0..names.len())
        .filter(|i| !others.contains(&Some(*i)))
        .collect();
    match candidates[..] {
        [one] => Ok(one),
        [] => Err("header has no `bytes` column".to_string()),
        _ => Err(format!(
            "header has no `bytes` column and several value columns ({}): choose one with --column",
            listed(names, &candidates)
        )),
    }
}

/// The names of columns `indices`, comma-separated, for an error message.
fn listed(names: &[&str], indices: &[usize]) -> String {
    let picked: Vec<&str> = indices.iter().map(|&i| names[i]).collect();
    picked.join(", ")
}

/// The unit a column header states, in parentheses or brackets at its end (`Real (MB)`,
/// `rss [KiB]`), as a byte multiplier; 1 when it states none or no size unit.
fn header_unit_scale(name: &str) -> f64 {
    let name = name.trim_end();
    let unit = [('(', ')'), ('[', ']')].iter().find_map(|&(open, close)| {
        let inner = name.strip_suffix(close)?;
        Some(&inner[inner.rfind(open)? + 1..])
    });
    unit.and_then(|u| crate::size::unit_scale(u.trim()))
        .unwrap_or(1.0)
}

/// Seconds since the Unix epoch of a date (RFC 3339, or `YYYY-MM-DD[ T]HH:MM:SS[.f]` with an
/// optional ` UTC`/` GMT`/`Z`, read as UTC without an offset) or of a Unix time in s, ms, µs or
/// ns (by magnitude: seconds cover years 1970–5138, milliseconds from 1973 on, and so on).
fn timestamp_seconds(field: &str) -> Option<f64> {
    if let Some(unix) = number(field) {
        let magnitude = unix.abs();
        return Some(if magnitude >= 1e17 {
            unix / 1e9
        } else if magnitude >= 1e14 {
            unix / 1e6
        } else if magnitude >= 1e11 {
            unix / 1e3
        } else {
            unix
        });
    }
    let field = field.trim();
    let seconds = |ts: jiff::Timestamp| ts.as_nanosecond() as f64 / 1e9;
    if let Ok(ts) = field.parse::<jiff::Timestamp>() {
        return Some(seconds(ts));
    }
    let naive = [" UTC", " GMT", "Z"]
        .iter()
        .find_map(|suffix| field.strip_suffix(suffix))
        .unwrap_or(field);
    let civil = naive.parse::<jiff::civil::DateTime>().ok()?;
    civil
        .to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| seconds(z.timestamp()))
}

/// The fields of a CSV row (RFC 4180 quoting: a quoted field may hold the separator, and `""`
/// inside it is one `"`), each trimmed of surrounding spaces.
fn split_fields(row: &str, separator: char) -> Vec<Cow<'_, str>> {
    let mut fields = Vec::new();
    let mut rest = row;
    loop {
        let trimmed = rest.trim_start();
        if let Some(quoted) = trimmed.strip_prefix('"') {
            // Up to the closing quote: one not followed by another.
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut after = quoted.len();
            while let Some((i, c)) = chars.next() {
                if c == '"' {
                    if quoted[i + 1..].starts_with('"') {
                        value.push('"');
                        chars.next();
                        continue;
                    }
                    after = i + 1;
                    break;
                }
                value.push(c);
            }
            let tail = &quoted[after..];
            fields.push(Cow::Owned(value));
            match tail.find(separator) {
                Some(at) => rest = &tail[at + separator.len_utf8()..],
                None => break,
            }
        } else {
            match rest.find(separator) {
                Some(at) => {
                    fields.push(Cow::Borrowed(rest[..at].trim()));
                    rest = &rest[at + separator.len_utf8()..];
                }
                None => {
                    fields.push(Cow::Borrowed(rest.trim()));
                    break;
                }
            }
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse_series(text: &str) -> Result<Series, CsvError> {
        parse_table(text, None).map(|table| table.series)
    }

    #[test]
    fn round_trips_watch_output() {
        let mut out = Vec::new();
        write_header(&mut out).unwrap();
        let mut s = Sample {
            t: 0.5,
            bytes: 4096,
            rss: Some(4096),
            pid: Some(crate::Pid(10)),
            ..Sample::default()
        };
        write_row(&mut out, &s).unwrap();
        s.t = 1.0;
        s.pid = Some(crate::Pid(11));
        s.limit = Some(1 << 30);
        write_row(&mut out, &s).unwrap();
        let series = parse_series(std::str::from_utf8(&out).unwrap()).unwrap();
        assert_eq!(series.t, vec![0.5, 1.0]);
        assert_eq!(series.bytes, vec![4096.0, 4096.0]);
        assert_eq!(series.breaks, vec![1]);
        assert_eq!(series.limit, Some((1u64 << 30) as f64));
    }

    #[test]
    fn accepts_other_layouts() {
        let s =
            parse_series("# from prometheus\r\n\"bytes\",\"t\"\r\n10,0\r\n\r\n20,1\r\n").unwrap();
        assert_eq!(s.t, vec![0.0, 1.0]);
        assert_eq!(s.bytes, vec![10.0, 20.0]);
        let s = parse_series("\u{feff}t,bytes,limit\n0,1,max\n1,2,\n").unwrap();
        assert_eq!((s.t.len(), s.limit), (2, None));
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(parse_series("").unwrap_err().line, 1);
        assert_eq!(
            parse_series("x,y\n1,2\n").unwrap_err().message,
            "header has no `t` column (seconds) nor a time, timestamp or date column"
        );
        let e = parse_series("t,bytes\n0,1\n1,oops\n").unwrap_err();
        assert_eq!(
            (e.line, e.message.as_str()),
            (3, "`bytes` is not a number: \"oops\"")
        );
        assert_eq!(parse_series("t,bytes\n0,1\n1\n").unwrap_err().line, 3);
        assert_eq!(parse_series("t,bytes\n2,1\n1,1\n").unwrap_err().line, 3);
        assert_eq!(parse_series("t,bytes\n0,inf\n").unwrap_err().line, 2);
        let e = parse_series("t,bytes\n0,1\n1,1.7e308\n").unwrap_err();
        assert_eq!(
            (e.line, e.message.as_str()),
            (3, "`bytes` is out of range: 1.7e308")
        );
        assert!(parse_series("t,bytes\n0,18446744073709551615\n1,5\n").is_ok());
        let e = parse_series("t,bytes\n0,1\n1,-5\n").unwrap_err();
        assert_eq!(
            (e.line, e.message.as_str()),
            (3, "`bytes` is negative: -5 (not a memory size)")
        );
        let zero = parse_series("t,bytes\n0,-0\n1,5\n").unwrap();
        assert!(
            zero.bytes[0] == 0.0 && zero.bytes[0].is_sign_positive(),
            "-0 is 0 bytes"
        );
        for limit in ["inf", "NaN", "-5", "lots", "1e300"] {
            let e = parse_series(&format!("t,bytes,limit\n0,1,10\n1,2,{limit}\n")).unwrap_err();
            assert_eq!(e.line, 3, "{limit}: {e}");
            assert!(e.message.starts_with("`limit` is not a byte count"), "{e}");
        }
        assert_eq!(
            parse_series("t,bytes\n").unwrap_err().message,
            "no samples after the header"
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_series(&String::from_utf8_lossy(&data));
        }

        #[test]
        fn csv_like_text_never_panics(text in "[tbytes0-9.,\\-#\"\n e]{0,300}") {
            let _ = parse_series(&text);
        }
    }
}
