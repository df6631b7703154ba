//! Memory series in the formats people already have, for `trend`: leaksift's own CSV and any CSV
//! with a time column (Grafana's panel export, spreadsheets), psrecord logs, memory_profiler's
//! `mprof` files and Prometheus range-query JSON. The format is told from the content.

mod json_line;

use json_line::Step;

use crate::csv::{CsvError, Series};

/// Where a series came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A CSV with a header (leaksift's `watch --out`, Grafana, spreadsheets).
    Csv,
    /// `psrecord --log FILE`: elapsed seconds, CPU %, real and virtual memory in MiB.
    Psrecord,
    /// `mprof run`: `MEM <MiB> <unix time>` lines.
    Mprof,
    /// Prometheus `/api/v1/query_range` JSON (a matrix).
    Prometheus,
}

impl Format {
    /// The name used in output (`--json`'s `format`).
    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Psrecord => "psrecord",
            Format::Mprof => "mprof",
            Format::Prometheus => "prometheus",
        }
    }
}

/// A series and what it was read from.
#[derive(Clone, Debug, PartialEq)]
pub struct Imported {
    pub series: Series,
    pub format: Format,
    /// The column (CSV, psrecord), line kind (mprof) or series labels (Prometheus) read.
    pub source: String,
}

/// psrecord and memory_profiler divide bytes by 1024² and call it MB.
const MIB: f64 = 1024.0 * 1024.0;

/// Reads a series, telling the format from the content. `column` picks the value column of a CSV
/// (see [`crate::csv::parse_table`]), psrecord's `virtual` column instead of `real`, or the
/// Prometheus series whose labels contain it; mprof files have a single series.
pub fn read_series(text: &str, column: Option<&str>) -> Result<Imported, CsvError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let first_line = text.lines().map(str::trim).find(|l| !l.is_empty());
    match first_line {
        Some(l) if l.starts_with('{') || l.starts_with('[') => prometheus(text, column),
        Some(l) if l.starts_with("# Elapsed time") => psrecord(text, column),
        Some(l) if l.starts_with("CMDLINE ") || l.starts_with("MEM ") => {
            mprof(text, column).map(|(series, source)| Imported {
                series,
                format: Format::Mprof,
                source: source.to_string(),
            })
        }
        _ => crate::csv::parse_table(text, column).map(|table| Imported {
            series: table.series,
            format: Format::Csv,
            source: table.value_column,
        }),
    }
}

fn err(line: usize, message: impl Into<String>) -> CsvError {
    CsvError {
        line,
        message: message.into(),
    }
}

/// Appends a sample, checking what [`crate::csv::parse_table`] checks.
fn push(series: &mut Series, line: usize, t: f64, bytes: f64) -> Result<(), CsvError> {
    if !bytes.is_finite() || bytes.abs() > crate::csv::MAX_BYTES {
        return Err(err(
            line,
            format!("memory value is out of range: {bytes:e}"),
        ));
    }
    if bytes < 0.0 {
        return Err(err(
            line,
            format!("memory value is negative: {bytes} (not a memory size)"),
        ));
    }
    if series.t.last().is_some_and(|&prev| t < prev) {
        return Err(err(line, format!("time goes backwards ({t})")));
    }
    series.t.push(t);
    series.bytes.push(bytes);
    Ok(())
}

fn finish(series: Series, what: &str) -> Result<Series, CsvError> {
    if series.t.is_empty() {
        return Err(err(1, format!("no samples: {what}")));
    }
    Ok(series)
}

/// A psrecord log: a `# Elapsed time   CPU (%)   Real (MB)   Virtual (MB)` header and
/// whitespace-separated rows. Real memory is RSS (summed over children with
/// `--include-children`).
fn psrecord(text: &str, column: Option<&str>) -> Result<Imported, CsvError> {
    let (index, source) = match column.map(str::to_ascii_lowercase).as_deref() {
        None | Some("real") | Some("real (mb)") | Some("rss") => (2, "Real (MB)"),
        Some("virtual") | Some("virtual (mb)") | Some("vms") => (3, "Virtual (MB)"),
        Some(other) => {
            return Err(err(
                1,
                format!("psrecord logs have `real` and `virtual` memory columns, not {other:?}"),
            ));
        }
    };
    // psrecord follows one process from its start to its end: no restart is in its log.
    let mut series = Series {
        marks_restarts: true,
        ..Series::default()
    };
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let row = line.trim();
        if row.is_empty() || row.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = row.split_whitespace().collect();
        let value = |at: usize| -> Result<f64, CsvError> {
            let field = fields.get(at).ok_or_else(|| {
                err(
                    line_no,
                    format!("expected 4 columns, found {}", fields.len()),
                )
            })?;
            field
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| err(line_no, format!("not a number: {field:?}")))
        };
        push(&mut series, line_no, value(0)?, value(index)? * MIB)?;
    }
    Ok(Imported {
        series: finish(series, "a psrecord log with a header only")?,
        format: Format::Psrecord,
        source: source.to_string(),
    })
}

/// An `mprof run` file: `MEM <MiB> <unix time>` samples of the process (its children included
/// with `--include-children`), each followed, with `--multiprocess`, by a `CHLD <pid> <MiB> <unix
/// time>` line per child. The series is the process tree's: MEM plus the CHLD lines of the same
/// round (`MEM+CHLD`), as a leak in a worker is the tree's leak; `column` `MEM` picks the parent
/// alone, `CHLD` the children alone. Before, CHLD lines were ignored, and children leaking
/// 60 MiB each read as a stable parent. `CMDLINE` and `FUNC` lines are not the series. mprof
/// writes `MEM 0.000000` once the process is gone (a live process never has 0 bytes resident):
/// such rounds are skipped, or every run would end in a drop to zero.
fn mprof(text: &str, column: Option<&str>) -> Result<(Series, &'static str), CsvError> {
    #[derive(Clone, Copy, PartialEq)]
    enum Pick {
        Tree,
        Parent,
        Children,
    }
    let pick = match column {
        None => Pick::Tree,
        Some(c) if c.eq_ignore_ascii_case("mem") => Pick::Parent,
        Some(c) if c.eq_ignore_ascii_case("chld") => Pick::Children,
        Some(c) if c.eq_ignore_ascii_case("mem+chld") => Pick::Tree,
        Some(c) => {
            return Err(err(
                1,
                format!(
                    "mprof files hold MEM (the process), CHLD (its children) and MEM+CHLD series, not {c:?}"
                ),
            ));
        }
    };
    // One round: its MEM line's number, time and MiB, and the MiB of its CHLD lines.
    struct Round {
        line: usize,
        unix: f64,
        parent: f64,
        children: f64,
    }
    let mut rounds: Vec<Round> = Vec::new();
    let mut has_children = false;
    let number = |f: Option<&str>| {
        f.and_then(|f| f.parse::<f64>().ok())
            .filter(|v| v.is_finite())
    };
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let trimmed = line.trim();
        if let Some(sample) = trimmed.strip_prefix("MEM ") {
            let mut fields = sample.split_whitespace();
            let (Some(mib), Some(unix)) = (number(fields.next()), number(fields.next())) else {
                return Err(err(
                    line_no,
                    format!("expected `MEM <MiB> <unix time>`, found {line:?}"),
                ));
            };
            rounds.push(Round {
                line: line_no,
                unix,
                parent: mib,
                children: 0.0,
            });
        } else if let Some(sample) = trimmed.strip_prefix("CHLD ") {
            let mut fields = sample.split_whitespace().skip(1);
            let (Some(mib), Some(_unix)) = (number(fields.next()), number(fields.next())) else {
                return Err(err(
                    line_no,
                    format!("expected `CHLD <pid> <MiB> <unix time>`, found {line:?}"),
                ));
            };
            has_children = true;
            if let Some(round) = rounds.last_mut() {
                round.children += mib;
            }
        }
    }
    if pick == Pick::Children && !has_children {
        return Err(err(
            1,
            "--column CHLD: the file has no CHLD line (mprof writes them with `mprof run \
             --multiprocess`, for a process that started children)"
                .to_string(),
        ));
    }
    // mprof records one run of one command: no restart is in its file.
    let mut series = Series {
        marks_restarts: true,
        ..Series::default()
    };
    let start = rounds.iter().find(|r| r.parent != 0.0).map(|r| r.unix);
    for round in rounds.iter().filter(|r| r.parent != 0.0) {
        let mib = match pick {
            Pick::Tree => round.parent + round.children,
            Pick::Parent => round.parent,
            Pick::Children => round.children,
        };
        push(
            &mut series,
            round.line,
            round.unix - start.unwrap_or(round.unix),
            mib * MIB,
        )?;
    }
    let source = match pick {
        Pick::Tree if has_children => "MEM+CHLD",
        Pick::Tree | Pick::Parent => "MEM",
        Pick::Children => "CHLD",
    };
    finish(series, "an mprof file without MEM lines").map(|series| (series, source))
}

/// Prometheus range-query JSON: the whole API response, its `data`, or the `result` array; each
/// series is `{"metric": {labels}, "values": [[unix time, "value"], ...]}`. Non-finite values
/// (gaps) are skipped. With several series, `column` picks the one whose labels contain it.
fn prometheus(text: &str, column: Option<&str>) -> Result<Imported, CsvError> {
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|e| err(e.line(), format!("not valid JSON: {e}")))?;
    // Where the result array is, as a path for `json_line` (errors name the line of a value).
    let (result, result_path): (_, &[Step<'_>]) = if let Some(r) = json.pointer("/data/result") {
        (Some(r), &[Step::Key("data"), Step::Key("result")])
    } else if let Some(r) = json.get("result") {
        (Some(r), &[Step::Key("result")])
    } else {
        (Some(&json).filter(|j| j.is_array()), &[])
    };
    let result = result
        .and_then(|r| r.as_array())
        .ok_or_else(|| err(1, "JSON without a Prometheus `data.result` array"))?;
    let line_at = |steps: &[Step<'_>]| {
        let path: Vec<Step<'_>> = result_path.iter().chain(steps).copied().collect();
        json_line::line_of(text, &path).unwrap_or(1)
    };
    let series_named: Vec<(String, &serde_json::Value)> = result
        .iter()
        .map(|s| (labels(s.get("metric")), s))
        .collect();
    let chosen: Vec<&(String, &serde_json::Value)> = match column {
        Some(wanted) => series_named
            .iter()
            .filter(|(name, _)| name.contains(wanted))
            .collect(),
        None => series_named.iter().collect(),
    };
    let (name, chosen) = match chosen[..] {
        [one] => one,
        [] if series_named.is_empty() => {
            return Err(err(line_at(&[]), "the query returned no series"));
        }
        [] => {
            return Err(err(
                1,
                format!(
                    "no series matches {:?} (series: {})",
                    column.unwrap_or(""),
                    listing(&series_named)
                ),
            ));
        }
        _ => {
            let how = match column {
                Some(column) => format!("match {column:?}: name more of one with --column"),
                None => "series: choose one with --column".to_string(),
            };
            return Err(err(
                1,
                format!(
                    "{} {how} (series: {})",
                    chosen.len(),
                    listing(&series_named)
                ),
            ));
        }
    };
    let series_index = series_named
        .iter()
        .position(|(_, series)| std::ptr::eq(*series, *chosen))
        .unwrap_or(0);
    let values = chosen
        .get("values")
        .and_then(|v| v.as_array())
        .ok_or_else(|| {
            err(
                line_at(&[Step::Index(series_index)]),
                format!("series {name} has no `values` (an instant query? use query_range)"),
            )
        })?;
    let mut series = Series::default();
    let mut start = None;
    for (index, pair) in values.iter().enumerate() {
        let sample = pair.as_array().filter(|p| p.len() == 2).and_then(|p| {
            let unix = p[0].as_f64()?;
            let value = p[1].as_str()?.parse::<f64>().ok()?;
            Some((unix, value))
        });
        let value_line = || {
            line_at(&[
                Step::Index(series_index),
                Step::Key("values"),
                Step::Index(index),
            ])
        };
        let Some((unix, value)) = sample else {
            return Err(err(
                value_line(),
                format!("series {name}: value {index} is not [time, \"number\"]"),
            ));
        };
        // NaN is Prometheus' staleness marker (no value at that step); an infinite value is no
        // memory size, as in the other formats.
        if value.is_nan() {
            continue;
        }
        let t = unix - *start.get_or_insert(unix);
        push(&mut series, 1, t, value).map_err(|e| {
            err(
                value_line(),
                format!("series {name}: value {index}: {}", e.message),
            )
        })?;
    }
    Ok(Imported {
        series: finish(series, "the series has no finite values")?,
        format: Format::Prometheus,
        source: name.clone(),
    })
}

/// `name{label="value", ...}` as Prometheus prints a series.
fn labels(metric: Option<&serde_json::Value>) -> String {
    let Some(map) = metric.and_then(|m| m.as_object()) else {
        return "{}".to_string();
    };
    let name = map.get("__name__").and_then(|n| n.as_str()).unwrap_or("");
    let rest: Vec<String> = map
        .iter()
        .filter(|(k, _)| *k != "__name__")
        .map(|(k, v)| {
            format!(
                "{k}={}",
                v.as_str()
                    .map_or_else(|| v.to_string(), |s| format!("{s:?}"))
            )
        })
        .collect();
    format!("{name}{{{}}}", rest.join(", "))
}

/// The first few series names, for an error message.
fn listing(series: &[(String, &serde_json::Value)]) -> String {
    let mut names: Vec<&str> = series.iter().take(5).map(|(n, _)| n.as_str()).collect();
    if series.len() > 5 {
        names.push("…");
    }
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn psrecord_real_memory_in_mib() {
        let log = "# Elapsed time   CPU (%)     Real (MB)   Virtual (MB)\n\
                   \x20      0.000        0.000       10.000       14.770\n\
                   \x20      0.111       19.600       16.500       20.711\n";
        let imported = read_series(log, None).unwrap();
        assert_eq!(imported.format, Format::Psrecord);
        assert_eq!(imported.series.t, vec![0.0, 0.111]);
        assert_eq!(imported.series.bytes, vec![10.0 * MIB, 16.5 * MIB]);
        let virt = read_series(log, Some("virtual")).unwrap();
        assert_eq!(virt.series.bytes[0], 14.77 * MIB);
        let e = read_series(&format!("{log}       0.2  1.0\n"), None).unwrap_err();
        assert_eq!(
            (e.line, e.message.as_str()),
            (4, "expected 4 columns, found 2")
        );
    }

    /// `mprof run --multiprocess`: each round's CHLD lines add to its MEM line (the tree), or
    /// are the series alone (`CHLD`); the parent alone is `MEM`.
    #[test]
    fn mprof_children_count_with_their_round() {
        let dat = "CMDLINE ./tree.sh\nMEM 1.0 100.0\nCHLD 7 2.0 100.1\nCHLD 8 3.0 100.1\n\
                   MEM 1.0 100.5\nCHLD 7 4.0 100.6\nCHLD 8 5.0 100.6\nMEM 0.000000 101.0\n";
        let tree = read_series(dat, None).unwrap();
        assert_eq!(tree.source, "MEM+CHLD");
        assert_eq!(tree.series.t, vec![0.0, 0.5]);
        assert_eq!(tree.series.bytes, vec![6.0 * MIB, 10.0 * MIB]);
        let children = read_series(dat, Some("CHLD")).unwrap();
        let no_children = "CMDLINE x\nMEM 1.0 100.0\nMEM 2.0 101.0\n";
        let e = read_series(no_children, Some("CHLD")).unwrap_err();
        assert!(e.message.contains("no CHLD line"), "{}", e.message);
        assert_eq!(children.series.bytes, vec![5.0 * MIB, 9.0 * MIB]);
        let parent = read_series(dat, Some("mem")).unwrap();
        assert_eq!(parent.series.bytes, vec![1.0 * MIB, 1.0 * MIB]);
        let e = read_series(dat, Some("RSS")).unwrap_err();
        assert!(e.message.contains("MEM+CHLD"), "{}", e.message);
        let e = read_series("CMDLINE x\nMEM 1.0 5.0\nCHLD 7 oops\n", None).unwrap_err();
        assert_eq!(e.line, 3);
    }

    #[test]
    fn mprof_mem_lines_relative_to_the_first() {
        let dat = "CMDLINE python3 grow.py\nMEM 6.5 1795270748.5\nCHLD 1 3.0 1795270748.6\n\
                   FUNC f 1.0 1795270748.5 2.0 1795270748.7\nMEM 14.0 1795270749.0\n\
                   MEM 0.000000 1795270749.1\n";
        let imported = read_series(dat, Some("MEM")).unwrap();
        assert_eq!(imported.format, Format::Mprof);
        assert_eq!(imported.series.t, vec![0.0, 0.5]);
        assert_eq!(imported.series.bytes, vec![6.5 * MIB, 14.0 * MIB]);
        let e = read_series("CMDLINE x\nMEM 1.0\n", None).unwrap_err();
        assert_eq!(e.line, 2);
        assert_eq!(read_series("CMDLINE x\n", None).unwrap_err().line, 1);
    }

    #[test]
    fn prometheus_matrix_picks_one_series() {
        let body = r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"__name__":"process_resident_memory_bytes","job":"api"},
             "values":[[1700000000,"1000"],[1700000015,"NaN"],[1700000030,"3000"]]},
            {"metric":{"__name__":"process_resident_memory_bytes","job":"db"},
             "values":[[1700000000,"5"]]}]}}"#;
        let e = read_series(body, None).unwrap_err();
        assert!(
            e.message.starts_with("2 series: choose one with --column"),
            "{e}"
        );
        let e = read_series(body, Some("process_resident")).unwrap_err();
        assert!(
            e.message
                .starts_with("2 match \"process_resident\": name more of one with --column"),
            "{e}"
        );
        let api = read_series(body, Some("api")).unwrap();
        assert_eq!(api.format, Format::Prometheus);
        assert_eq!(api.source, "process_resident_memory_bytes{job=\"api\"}");
        assert_eq!(api.series.t, vec![0.0, 30.0]);
        assert_eq!(api.series.bytes, vec![1000.0, 3000.0]);
        assert!(
            read_series(body, Some("cache"))
                .unwrap_err()
                .message
                .starts_with("no series matches")
        );
        let e = read_series("{\"data\": {\"result\": [}}", None).unwrap_err();
        assert!(e.message.starts_with("not valid JSON"), "{e}");
        // NaN (staleness) is skipped; an infinite or negative value is no memory size.
        for bad in ["+Inf", "1e400", "-5"] {
            let body = format!(
                r#"{{"data":{{"resultType":"matrix","result":[{{"metric":{{}},
                "values":[[1700000000,"1000"],[1700000015,"{bad}"]]}}]}}}}"#
            );
            let e = read_series(&body, None).unwrap_err();
            assert!(e.message.contains("value 1"), "{bad}: {e}");
            assert_eq!(e.line, 2, "{bad}: {e}");
        }
        // A sample of the wrong shape is named at its line in a pretty-printed response.
        let e = read_series(body.replace("\"3000\"", "3000").as_str(), Some("api")).unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        assert!(
            e.message.contains("value 2 is not [time, \"number\"]"),
            "{e}"
        );
        let e =
            read_series(body.replace("\"values\"", "\"vals\"").as_str(), Some("db")).unwrap_err();
        assert_eq!(e.line, 4, "{e}");
        let e = read_series("CMDLINE x\nMEM 1.0 5.0\nMEM -2.0 6.0\n", None).unwrap_err();
        assert_eq!((e.line, e.message.contains("negative")), (3, true), "{e}");
    }

    #[test]
    fn grafana_export_with_dates_and_formatted_values() {
        let csv = "sep=,\n\"Time\",\"process_resident_memory_bytes{job=\"\"api\"\"}\"\n\
                   2026-11-21 14:00:00,1.00 GiB\n2026-11-21 14:00:15,\n2026-11-21 14:00:30,1.50 GiB\n";
        let imported = read_series(csv, None).unwrap();
        assert_eq!(imported.format, Format::Csv);
        assert_eq!(imported.series.t, vec![0.0, 30.0]);
        assert_eq!(imported.series.bytes, vec![1073741824.0, 1610612736.0]);
        let epoch_ms = "Time,rss\n1763733600000,100\n1763733601500,200\n";
        assert_eq!(
            read_series(epoch_ms, None).unwrap().series.t,
            vec![0.0, 1.5]
        );
        let offsets = "timestamp,used\n2026-11-21T14:00:00+01:00,1\n2026-11-21T13:00:05Z,2\n";
        assert_eq!(read_series(offsets, None).unwrap().series.t, vec![0.0, 5.0]);
        let header_unit = "time,Real (MB),Virtual (MB)\n0,1,2\n";
        let e = read_series(header_unit, None).unwrap_err();
        assert!(e.message.contains("choose one with --column"), "{e}");
        let real = read_series(header_unit, Some("real")).unwrap();
        assert_eq!(
            (real.source.as_str(), real.series.bytes[0]),
            ("Real (MB)", 1e6)
        );
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in "[{}\\[\\]\"a-zA-Z0-9.,: \n#-]{0,300}") {
            let _ = read_series(&text, None);
            let _ = read_series(&text, Some("a"));
        }
    }
}
