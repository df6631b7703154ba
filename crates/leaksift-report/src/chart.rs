//! SVG charts of memory over time: samples, baseline, fitted trend and projected limit crossing.
//!
//! Hand-written SVG (no font or system dependency): a renderer that only draws what the caller
//! computed. Every caller-supplied string passes through [`crate::escape::xml`].

use std::fmt::Write;

use crate::escape::xml;
use crate::units;

/// What the horizontal axis counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XAxis {
    Seconds,
    Iterations,
}

/// A fitted straight line from `(t0, y0)` to `(t1, y1)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Line {
    pub t0: f64,
    pub y0: f64,
    pub t1: f64,
    pub y1: f64,
}

/// When the fitted trend reaches the limit (x-axis units).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Crossing {
    pub at: f64,
    pub earliest: f64,
    pub latest: Option<f64>,
}

/// Everything the chart shows. Points are `(x, bytes)`.
#[derive(Clone, Debug)]
pub struct MemoryChart<'a> {
    pub title: &'a str,
    /// What the y values are, e.g. "RSS", "PSS of the process tree".
    pub signal: &'a str,
    /// One line under the title, e.g. the slope and its interval.
    pub subtitle: &'a str,
    /// "leak", "plateau", "stable" or "inconclusive" (colours the badge).
    pub verdict: &'a str,
    pub x_axis: XAxis,
    pub samples: &'a [(f64, f64)],
    pub baseline: &'a [(f64, f64)],
    /// The trend, one line per restart segment.
    pub trend: &'a [Line],
    pub limit: Option<f64>,
    pub crossing: Option<Crossing>,
}

const W: f64 = 960.0;
const H: f64 = 520.0;
const LEFT: f64 = 88.0;
const RIGHT: f64 = 32.0;
const TOP: f64 = 96.0;
const BOTTOM: f64 = 64.0;
/// The x range is stretched to show a limit crossing only when it lies within this many observed
/// spans; a farther crossing is stated in words.
const MAX_STRETCH: f64 = 3.0;
/// Above this many samples, the sample line keeps each pixel column's minimum and maximum.
const MAX_DRAWN_SAMPLES: usize = 2 * 880;

/// Longest title and subtitle (in characters) that fit beside the verdict badge.
const TITLE_CHARS: usize = 64;
const SUBTITLE_CHARS: usize = 118;

const SAMPLE_COLOR: &str = "#7aa6d8";
const BASELINE_COLOR: &str = "#1f4e8c";
const TREND_COLOR: &str = "#d9480f";
const LIMIT_COLOR: &str = "#c92a2a";
const GRID_COLOR: &str = "#e9ecef";
const TEXT_COLOR: &str = "#343a40";
const MUTED_COLOR: &str = "#6c757d";

/// Renders the chart as a standalone SVG document.
pub fn render(chart: &MemoryChart<'_>) -> String {
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;

    let xs = chart.samples.iter().map(|p| p.0);
    let (x_lo, x_hi_data) = min_max(xs).unwrap_or((0.0, 1.0));
    // A series that starts just after zero (the first sample of a watch) is drawn from zero.
    let x_lo = if x_lo > 0.0 && x_lo < 0.05 * (x_hi_data - x_lo) {
        0.0
    } else {
        x_lo
    };
    let observed = (x_hi_data - x_lo).max(f64::MIN_POSITIVE);
    let crossing_shown = chart
        .crossing
        .filter(|c| c.at.is_finite() && c.at - x_lo <= MAX_STRETCH * observed);
    let mut x_hi = x_hi_data;
    if let Some(c) = crossing_shown {
        x_hi = x_hi.max(c.at.max(c.earliest));
    }
    if x_hi <= x_lo {
        x_hi = x_lo + 1.0;
    }
    let ys = chart
        .samples
        .iter()
        .chain(chart.baseline)
        .map(|p| p.1)
        .chain(chart.trend.iter().flat_map(|l| [l.y0, l.y1]))
        .chain(
            chart
                .limit
                .filter(|_| crossing_shown.is_some() || chart.crossing.is_none()),
        );
    let (y_min, y_max) = min_max(ys).unwrap_or((0.0, 1.0));
    let y_unit = byte_unit(y_max.abs().max(y_min.abs()));
    // Headroom so the top line (often the limit) does not sit on the frame.
    let y_max = y_max + 0.04 * (y_max - y_min);
    let y_ticks = nice_ticks(y_min / y_unit.1, y_max / y_unit.1, 6);
    let (y_lo, y_hi) = (
        y_ticks.first().copied().unwrap_or(0.0) * y_unit.1,
        y_ticks.last().copied().unwrap_or(1.0) * y_unit.1,
    );
    let y_hi = if y_hi > y_lo { y_hi } else { y_lo + 1.0 };
    let x_unit = match chart.x_axis {
        XAxis::Seconds => time_unit(x_hi - x_lo),
        XAxis::Iterations => ("iteration", 1.0),
    };
    // The x range is the data's (a tick-rounded range would leave an empty band on the right);
    // ticks outside it are dropped.
    let x_ticks: Vec<f64> = nice_ticks(x_lo / x_unit.1, x_hi / x_unit.1, 8)
        .into_iter()
        .filter(|t| {
            *t * x_unit.1 >= x_lo - 1e-9 * observed && *t * x_unit.1 <= x_hi + 1e-9 * observed
        })
        .collect();

    let px = |x: f64| LEFT + (x - x_lo) / (x_hi - x_lo) * plot_w;
    let py = |y: f64| TOP + plot_h - (y - y_lo) / (y_hi - y_lo) * plot_h;

    let mut svg = String::with_capacity(64 * 1024);
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" font-family="system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif" font-size="13">
<rect width="{W}" height="{H}" fill="#ffffff"/>
<text x="{LEFT}" y="30" font-size="19" font-weight="600" fill="{TEXT_COLOR}">{}</text>
<text x="{LEFT}" y="52" fill="{MUTED_COLOR}">{}</text>
"##,
        xml(&ellipsize(chart.title, TITLE_CHARS)),
        xml(&ellipsize(chart.subtitle, SUBTITLE_CHARS))
    );
    badge(&mut svg, chart.verdict);

    // Grid and axes.
    for &tick in &y_ticks {
        let y = py(tick * y_unit.1);
        let _ = writeln!(
            svg,
            r#"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{GRID_COLOR}"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="{MUTED_COLOR}">{} {}</text>"#,
            LEFT + plot_w,
            LEFT - 8.0,
            y + 4.0,
            tick_label(tick),
            y_unit.0
        );
    }
    for &tick in &x_ticks {
        let x = px(tick * x_unit.1);
        let _ = writeln!(
            svg,
            r#"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}" stroke="{GRID_COLOR}"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="{MUTED_COLOR}">{}</text>"#,
            TOP + plot_h,
            TOP + plot_h + 18.0,
            tick_label(tick)
        );
    }
    let x_title = match chart.x_axis {
        XAxis::Seconds => format!("time ({})", x_unit.0),
        XAxis::Iterations => "scenario iteration".to_string(),
    };
    let _ = writeln!(
        svg,
        r#"<line x1="{LEFT}" y1="{b:.1}" x2="{r:.1}" y2="{b:.1}" stroke="{MUTED_COLOR}"/><line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{b:.1}" stroke="{MUTED_COLOR}"/>
<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="{TEXT_COLOR}">{}</text>
<text transform="translate(18 {:.1}) rotate(-90)" text-anchor="middle" fill="{TEXT_COLOR}">{} ({})</text>"#,
        LEFT + plot_w / 2.0,
        H - 18.0,
        xml(&x_title),
        TOP + plot_h / 2.0,
        xml(chart.signal),
        y_unit.0,
        b = TOP + plot_h,
        r = LEFT + plot_w,
    );

    // Limit and projected crossing.
    if let Some(limit) = chart.limit.filter(|l| *l >= y_lo && *l <= y_hi) {
        let y = py(limit);
        let _ = writeln!(
            svg,
            r#"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{LIMIT_COLOR}" stroke-width="1.5" stroke-dasharray="6 4"/><text x="{:.1}" y="{:.1}" fill="{LIMIT_COLOR}">limit {}</text>"#,
            LEFT + plot_w,
            LEFT + 6.0,
            y - 6.0,
            xml(&units::bytes(limit))
        );
        if let Some(c) = crossing_shown {
            let (x0, x1) = (
                px(c.earliest),
                c.latest.map_or(LEFT + plot_w, px).min(LEFT + plot_w),
            );
            let _ = writeln!(
                svg,
                r#"<rect x="{x0:.1}" y="{:.1}" width="{:.1}" height="10" fill="{LIMIT_COLOR}" fill-opacity="0.18"/><circle cx="{:.1}" cy="{y:.1}" r="5" fill="{LIMIT_COLOR}"/>"#,
                y - 5.0,
                (x1 - x0).max(1.0),
                px(c.at)
            );
        }
    }

    // Samples (decimated per pixel column when dense), baseline, trend.
    let drawn = decimate(chart.samples, x_lo, x_hi, plot_w);
    if !drawn.is_empty() {
        svg.push_str(&format!(
            r#"<polyline fill="none" stroke="{SAMPLE_COLOR}" stroke-width="1.2" stroke-linejoin="round" points=""#
        ));
        for (x, y) in &drawn {
            let _ = write!(svg, "{:.1},{:.1} ", px(*x), py(*y));
        }
        svg.push_str("\"/>\n");
    }
    for (x, y) in chart.baseline {
        let _ = writeln!(
            svg,
            r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{BASELINE_COLOR}"/>"#,
            px(*x),
            py(*y)
        );
    }
    for line in chart.trend {
        let _ = writeln!(
            svg,
            r#"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{TREND_COLOR}" stroke-width="2.5"/>"#,
            px(line.t0),
            py(line.y0),
            px(line.t1),
            py(line.y1)
        );
    }
    if let (Some(c), Some(last), Some(limit)) = (crossing_shown, chart.trend.last(), chart.limit) {
        let _ = writeln!(
            svg,
            r#"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{TREND_COLOR}" stroke-width="2" stroke-dasharray="4 4"/>"#,
            px(last.t1),
            py(last.y1),
            px(c.at),
            py(limit)
        );
    }
    if let Some(c) = chart.crossing {
        let text = crossing_text(c, x_hi_data, chart.x_axis);
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="{LIMIT_COLOR}" font-weight="600">{}</text>"#,
            LEFT + plot_w,
            TOP - 10.0,
            xml(&text)
        );
    }
    legend(&mut svg, chart);
    svg.push_str("</svg>\n");
    svg
}

fn badge(svg: &mut String, verdict: &str) {
    let color = match verdict {
        "leak" => "#c92a2a",
        "plateau" => "#e67700",
        "stable" => "#2b8a3e",
        _ => "#868e96",
    };
    let label = xml(&verdict.to_uppercase());
    let width = 24.0 + 9.0 * verdict.chars().count() as f64;
    let _ = writeln!(
        svg,
        r##"<rect x="{:.1}" y="16" width="{width:.1}" height="28" rx="14" fill="{color}"/><text x="{:.1}" y="35" text-anchor="middle" fill="#ffffff" font-weight="700" letter-spacing="0.5">{label}</text>"##,
        W - RIGHT - width,
        W - RIGHT - width / 2.0
    );
}

fn legend(svg: &mut String, chart: &MemoryChart<'_>) {
    /// How a legend entry's mark is drawn.
    enum Mark {
        Line(&'static str, f64, &'static str),
        Dot(&'static str),
    }
    let mut items = vec![
        (Mark::Line(SAMPLE_COLOR, 2.0, "none"), "samples"),
        (Mark::Dot(BASELINE_COLOR), "baseline (window minima)"),
    ];
    if !chart.trend.is_empty() {
        items.push((Mark::Line(TREND_COLOR, 2.5, "none"), "trend (Theil–Sen)"));
    }
    if chart.limit.is_some() {
        items.push((Mark::Line(LIMIT_COLOR, 1.5, "6 4"), "limit"));
    }
    let y = TOP - 26.0;
    let mut x = LEFT;
    for (mark, label) in items {
        match mark {
            Mark::Line(color, width, dash) => {
                let _ = write!(
                    svg,
                    r#"<line x1="{x:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{color}" stroke-width="{width}" stroke-dasharray="{dash}"/>"#,
                    x + 20.0
                );
            }
            Mark::Dot(color) => {
                let _ = write!(
                    svg,
                    r#"<circle cx="{:.1}" cy="{y:.1}" r="3.5" fill="{color}"/>"#,
                    x + 10.0
                );
            }
        }
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" fill="{TEXT_COLOR}">{}</text>"#,
            x + 26.0,
            y + 4.0,
            xml(label)
        );
        x += 40.0 + 7.0 * label.chars().count() as f64;
    }
}

/// Cuts `text` to at most `max` characters, ending with "…" when cut.
fn ellipsize(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn crossing_text(c: Crossing, now: f64, x_axis: XAxis) -> String {
    let fmt = |v: f64| match x_axis {
        XAxis::Seconds => units::duration(v),
        XAxis::Iterations => format!("{v:.0} iterations"),
    };
    let latest = c
        .latest
        .map_or("never?".to_string(), |l| fmt((l - now).max(0.0)));
    format!(
        "limit reached in ~{} (95%: {} – {})",
        fmt((c.at - now).max(0.0)),
        fmt((c.earliest - now).max(0.0)),
        latest
    )
}

fn min_max(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .filter(|v| v.is_finite())
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}

/// The binary unit whose scale keeps tick labels short.
fn byte_unit(max: f64) -> (&'static str, f64) {
    const UNITS: [(&str, f64); 5] = [
        ("GiB", 1024.0 * 1024.0 * 1024.0),
        ("MiB", 1024.0 * 1024.0),
        ("KiB", 1024.0),
        ("B", 1.0),
        ("B", 1.0),
    ];
    UNITS
        .into_iter()
        .find(|(_, scale)| max >= 2.0 * scale)
        .unwrap_or(("B", 1.0))
}

fn time_unit(span: f64) -> (&'static str, f64) {
    if span >= 3.0 * 3600.0 {
        ("h", 3600.0)
    } else if span >= 3.0 * 60.0 {
        ("min", 60.0)
    } else {
        ("s", 1.0)
    }
}

/// Ticks at 1-2-5 multiples covering `[lo, hi]`, about `count` of them.
fn nice_ticks(lo: f64, hi: f64, count: usize) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite()) {
        return vec![0.0, 1.0];
    }
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else {
        (lo - 0.5, hi + 0.5)
    };
    let raw = (hi - lo) / count.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    let first = (lo / step).floor();
    let last = (hi / step).ceil();
    let n = ((last - first) as usize).min(50);
    (0..=n).map(|i| (first + i as f64) * step).collect()
}

fn tick_label(v: f64) -> String {
    let v = if v.abs() < 1e-9 { 0.0 } else { v };
    if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else if (v * 10.0 - (v * 10.0).round()).abs() < 1e-9 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// An `(x, y)` point of the chart.
type XY = (f64, f64);

/// Keeps each pixel column's minimum and maximum point when there are many samples.
fn decimate(points: &[(f64, f64)], lo: f64, hi: f64, width: f64) -> Vec<(f64, f64)> {
    if points.len() <= MAX_DRAWN_SAMPLES {
        return points.to_vec();
    }
    let columns = width as usize;
    let mut out = Vec::with_capacity(3 * columns);
    let mut current: Option<(usize, XY, XY)> = None;
    for &p in points {
        let col = (((p.0 - lo) / (hi - lo)) * columns as f64).clamp(0.0, columns as f64) as usize;
        match &mut current {
            Some((c, min, max)) if *c == col => {
                if p.1 < min.1 {
                    *min = p;
                }
                if p.1 > max.1 {
                    *max = p;
                }
            }
            _ => {
                if let Some((_, min, max)) = current.take() {
                    push_ordered(&mut out, min, max);
                }
                current = Some((col, p, p));
            }
        }
    }
    if let Some((_, min, max)) = current {
        push_ordered(&mut out, min, max);
    }
    out
}

fn push_ordered(out: &mut Vec<(f64, f64)>, a: (f64, f64), b: (f64, f64)) {
    if a.0 <= b.0 {
        out.push(a);
        out.push(b);
    } else {
        out.push(b);
        out.push(a);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart<'a>(samples: &'a [(f64, f64)], trend: &'a [Line]) -> MemoryChart<'a> {
        MemoryChart {
            title: "watch <pid 42> & \"friends\"",
            signal: "RSS",
            subtitle: "slope 1.00 MiB/s",
            verdict: "leak",
            x_axis: XAxis::Seconds,
            samples,
            baseline: &samples[..samples.len().min(2)],
            trend,
            limit: Some(64.0 * 1024.0 * 1024.0),
            crossing: Some(Crossing {
                at: 20.0,
                earliest: 18.0,
                latest: Some(25.0),
            }),
        }
    }

    #[test]
    fn escapes_strings_and_draws_every_part() {
        let samples: Vec<(f64, f64)> = (0..20)
            .map(|i| (f64::from(i), f64::from(i) * 1048576.0 + 4e6))
            .collect();
        let trend = [Line {
            t0: 0.0,
            y0: 4e6,
            t1: 19.0,
            y1: 19.0 * 1048576.0 + 4e6,
        }];
        let svg = render(&chart(&samples, &trend));
        assert!(svg.contains("watch &lt;pid 42&gt; &amp; &quot;friends&quot;"));
        assert!(!svg.contains("<pid"));
        for part in [
            "<polyline",
            "<circle",
            "stroke-dasharray=\"6 4\"",
            "limit 64.00 MiB",
            "MiB</text>",
            "time (s)",
            "LEAK",
            "limit reached in ~",
        ] {
            assert!(svg.contains(part), "missing {part}");
        }
    }

    #[test]
    fn dense_series_are_decimated() {
        let samples: Vec<(f64, f64)> = (0..100_000)
            .map(|i| (f64::from(i), f64::from(i % 97)))
            .collect();
        let svg = render(&MemoryChart {
            limit: None,
            crossing: None,
            ..chart(&samples, &[])
        });
        assert!(svg.len() < 200_000, "{} bytes", svg.len());
    }

    #[test]
    fn empty_and_flat_inputs_render() {
        let svg = render(&MemoryChart {
            limit: None,
            crossing: None,
            baseline: &[],
            ..chart(&[], &[])
        });
        assert!(svg.ends_with("</svg>\n"));
        let flat = [(0.0, 5.0), (1.0, 5.0)];
        let svg = render(&MemoryChart {
            limit: None,
            crossing: None,
            ..chart(&flat, &[])
        });
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(
            nice_ticks(0.0, 10.0, 5),
            vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
        );
        let ticks = nice_ticks(3.2, 3.9, 4);
        assert_eq!(ticks.len(), 5);
        assert!(
            (ticks[0] - 3.2).abs() < 1e-9 && (ticks[4] - 4.0).abs() < 1e-9,
            "{ticks:?}"
        );
        assert_eq!(tick_label(2.5), "2.5");
        assert_eq!(tick_label(3.0), "3");
    }
}
