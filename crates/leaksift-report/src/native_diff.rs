//! Text rendering of two native traces compared (`leaksift diff A.trace B.trace`): the totals
//! side by side, then the call sites whose lost, peak and allocation figures changed most.

use std::fmt::Write;

use leaksift_native::compare::{FigureDeltas, Figures, SiteChange, TraceComparison};
use leaksift_native::replay::{BlocksBytes, LeakClass};
use leaksift_native::view::class_name;

use crate::native::site_labels;
use crate::table::{Align, Table};
use crate::units::{self, signed_bytes};

/// Renders the comparison of trace `old_name` with trace `new_name`, at most `top` rows per
/// table.
pub fn render_trace_diff(
    comparison: &TraceComparison,
    old_name: &str,
    new_name: &str,
    top: usize,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{old_name} → {new_name}: {} call sites changed (matched by function, file and line)",
        comparison.sites.len()
    );
    for (name, totals) in [(old_name, &comparison.old), (new_name, &comparison.new)] {
        if totals.truncated {
            let _ = writeln!(
                out,
                "TRUNCATED: {name} ends without the process's exit; its figures cover what was \
                 recorded"
            );
        }
        if totals.leaks.is_none() {
            let _ = writeln!(
                out,
                "{name} has no reachability scan (the process did not exit normally): its lost \
                 bytes count as 0"
            );
        }
    }
    out.push('\n');
    out.push_str(&totals_table(comparison));

    type Pick = fn(&FigureDeltas) -> i64;
    type Shown = fn(&Figures) -> u64;
    let tables: [(&str, Pick, Shown, bool); 4] = [
        (
            "Call sites by change in bytes lost (definitely + indirectly)",
            |d| d.lost_bytes,
            |f| f.lost_bytes,
            true,
        ),
        (
            "Call sites by change in bytes held at the peak",
            |d| d.peak_bytes,
            |f| f.peak_bytes,
            true,
        ),
        (
            "Call sites by change in bytes live at the end",
            |d| d.live_bytes,
            |f| f.live_bytes,
            true,
        ),
        (
            "Call sites by change in allocations",
            |d| d.allocations,
            |f| f.allocations,
            false,
        ),
    ];
    for (title, pick, shown, in_bytes) in tables {
        let mut rows: Vec<&SiteChange> = comparison
            .sites
            .iter()
            .filter(|s| pick(&s.delta()) != 0)
            .collect();
        if rows.is_empty() {
            continue;
        }
        rows.sort_by_key(|s| std::cmp::Reverse(pick(&s.delta()).unsigned_abs()));
        rows.truncate(top);
        let _ = writeln!(out, "\n{title}");
        let mut table = Table::new(&[
            ("change", Align::Right),
            ("old", Align::Right),
            ("new", Align::Right),
            ("allocated at", Align::Left),
        ]);
        // Frames are shared between sites (`TraceComparison::frames`): copied for the rows shown.
        let frames: Vec<Vec<_>> = rows
            .iter()
            .map(|s| comparison.frames(s).cloned().collect())
            .collect();
        let frames: Vec<&[_]> = frames.iter().map(Vec::as_slice).collect();
        for (row, label) in rows.iter().zip(site_labels(&frames)) {
            let (change, old, new) = (pick(&row.delta()), shown(&row.old), shown(&row.new));
            let [change, old, new] = if in_bytes {
                [
                    signed_bytes(i128::from(change)),
                    units::bytes(old as f64),
                    units::bytes(new as f64),
                ]
            } else {
                [signed_count(change), old.to_string(), new.to_string()]
            };
            table.row([change, old, new, label]);
        }
        out.push_str(&table.render());
    }
    out
}

/// The whole traces' figures side by side.
fn totals_table(comparison: &TraceComparison) -> String {
    let (old, new) = (&comparison.old, &comparison.new);
    let mut table = Table::new(&[
        ("", Align::Left),
        ("old", Align::Right),
        ("new", Align::Right),
        ("change", Align::Right),
    ]);
    let count_row = |table: &mut Table, name: &str, old: u64, new: u64| {
        table.row([
            name.to_string(),
            old.to_string(),
            new.to_string(),
            signed_count(new as i64 - old as i64),
        ]);
    };
    let bytes_row = |table: &mut Table, name: &str, old: u64, new: u64| {
        table.row([
            name.to_string(),
            units::bytes(old as f64),
            units::bytes(new as f64),
            signed_bytes(i128::from(new) - i128::from(old)),
        ]);
    };
    count_row(
        &mut table,
        "allocations",
        old.figures.allocations,
        new.figures.allocations,
    );
    bytes_row(
        &mut table,
        "allocated",
        old.figures.allocated_bytes,
        new.figures.allocated_bytes,
    );
    count_row(
        &mut table,
        "temporary allocations",
        old.figures.temporary,
        new.figures.temporary,
    );
    bytes_row(
        &mut table,
        "peak heap",
        old.figures.peak_bytes,
        new.figures.peak_bytes,
    );
    bytes_row(
        &mut table,
        "live at end",
        old.figures.live_bytes,
        new.figures.live_bytes,
    );
    if let (Some(old_leaks), Some(new_leaks)) = (&old.leaks, &new.leaks) {
        let cell = |b: BlocksBytes| format!("{} in {}", units::bytes(b.bytes as f64), b.blocks);
        for class in [
            LeakClass::DefinitelyLost,
            LeakClass::IndirectlyLost,
            LeakClass::PossiblyLost,
            LeakClass::StillReachable,
        ] {
            let (o, n) = (old_leaks.class(class), new_leaks.class(class));
            table.row([
                class_name(class).replace('_', " "),
                cell(o),
                cell(n),
                signed_bytes(i128::from(n.bytes) - i128::from(o.bytes)),
            ]);
        }
    }
    table.render()
}

fn signed_count(delta: i64) -> String {
    if delta > 0 {
        format!("+{delta}")
    } else {
        delta.to_string()
    }
}
