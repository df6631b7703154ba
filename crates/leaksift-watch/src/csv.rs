//! The series CSV: writing `watch --out` files and reading any CSV with `t` and `bytes` columns
//! (what `trend` accepts).

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
const MAX_BYTES: f64 = 18_446_744_073_709_551_616.0;

fn err(line: usize, message: impl Into<String>) -> CsvError {
    CsvError {
        line,
        message: message.into(),
    }
}

/// Parses a series: blank lines and lines starting with `#` are skipped; the first other line is
/// the header, which must name a `t` (seconds) and a `bytes` column (any order, other columns
/// ignored, fields may be double-quoted). `t` must not decrease.
pub fn parse_series(text: &str) -> Result<Series, CsvError> {
    // Spreadsheets start UTF-8 CSVs with a byte order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    let (header_line, header) = lines
        .next()
        .ok_or_else(|| err(1, "empty file: no header"))?;
    let names: Vec<&str> = header.split(',').map(unquote).collect();
    let column = |name: &str| names.iter().position(|n| n.eq_ignore_ascii_case(name));
    let t_col = column("t").ok_or_else(|| err(header_line, "header has no `t` column"))?;
    let b_col = column("bytes").ok_or_else(|| err(header_line, "header has no `bytes` column"))?;
    let pid_col = column("pid");
    let limit_col = column("limit");
    let mut series = Series::default();
    let mut last_pid: Option<&str> = None;
    for (line, row) in lines {
        let fields: Vec<&str> = row.split(',').map(unquote).collect();
        let number = |col: usize, name: &str| -> Result<f64, CsvError> {
            let field = fields
                .get(col)
                .ok_or_else(|| err(line, format!("missing `{name}` field")))?;
            match field.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(v),
                _ => Err(err(line, format!("`{name}` is not a number: {field:?}"))),
            }
        };
        let t = number(t_col, "t")?;
        let bytes = number(b_col, "bytes")?;
        // No memory is larger than 2^64 bytes; such values only overflow the fit and the chart.
        if bytes.abs() > MAX_BYTES {
            return Err(err(line, format!("`bytes` is out of range: {bytes:e}")));
        }
        if series.t.last().is_some_and(|&prev| t < prev) {
            return Err(err(line, format!("`t` goes backwards ({t})")));
        }
        if let Some(pid) = pid_col
            .and_then(|c| fields.get(c))
            .filter(|p| !p.is_empty())
        {
            if last_pid.is_some_and(|prev| prev != *pid) {
                series.breaks.push(series.t.len());
            }
            last_pid = Some(pid);
        }
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
        series.bytes.push(bytes);
    }
    if series.t.is_empty() {
        return Err(err(header_line, "no samples after the header"));
    }
    Ok(series)
}

fn unquote(field: &str) -> &str {
    let f = field.trim();
    f.strip_prefix('"')
        .and_then(|f| f.strip_suffix('"'))
        .unwrap_or(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
            "header has no `t` column"
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
        assert!(parse_series("t,bytes\n0,18446744073709551615\n1,-5\n").is_ok());
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
