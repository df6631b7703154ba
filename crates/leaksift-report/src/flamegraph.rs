//! Flamegraph SVGs through the `inferno` crate, from stacks given outermost frame first.
//!
//! inferno escapes every frame name and the title when it writes the SVG (quick-xml text and
//! attribute escaping); the test below holds it to that with a `<script>` name.

use std::io::Write;

/// One stack and its weight, frames outermost (e.g. `main`) first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightedStack {
    pub frames: Vec<String>,
    pub weight: u64,
}

/// Writes a flamegraph of `stacks` as SVG. `count_name` names the weight (e.g. `bytes`).
pub fn write_svg(
    stacks: &[WeightedStack],
    title: &str,
    count_name: &str,
    out: impl Write,
) -> std::io::Result<()> {
    let lines: Vec<String> = stacks
        .iter()
        .filter(|s| s.weight > 0)
        .map(folded_line)
        .collect();
    let mut options = inferno::flamegraph::Options::default();
    options.title = title.to_string();
    options.count_name = count_name.to_string();
    options.hash = true;
    if lines.is_empty() {
        // inferno refuses input without weight; draw one labelled bar instead of failing.
        options.subtitle = Some("empty: no stack has a nonzero value".to_string());
        let no_data_bar = ["(no data) 1"];
        return inferno::flamegraph::from_lines(&mut options, no_data_bar, out);
    }
    inferno::flamegraph::from_lines(&mut options, lines.iter().map(String::as_str), out)
}

/// inferno's folded format: frames joined by `;`, then a space and the weight. A `;` inside a
/// name would split the frame, so it becomes `:`; newlines would split the line.
fn folded_line(stack: &WeightedStack) -> String {
    let mut line = String::new();
    for (i, frame) in stack.frames.iter().enumerate() {
        if i > 0 {
            line.push(';');
        }
        line.extend(frame.chars().map(|c| match c {
            ';' => ':',
            '\n' | '\r' => ' ',
            c => c,
        }));
    }
    if stack.frames.is_empty() {
        line.push_str("??");
    }
    line.push(' ');
    line.push_str(&stack.weight.to_string());
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svg(stacks: &[WeightedStack], title: &str) -> String {
        let mut out = Vec::new();
        write_svg(stacks, title, "bytes", &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn names_and_title_are_escaped() {
        let stacks = [WeightedStack {
            frames: vec![
                "main".into(),
                "<script>alert(1)</script>".into(),
                "a&b\"c".into(),
            ],
            weight: 10,
        }];
        let out = svg(&stacks, "<script>title</script>");
        assert!(
            !out.contains("<script>alert"),
            "unescaped frame name in SVG"
        );
        assert!(!out.contains("<script>title"), "unescaped title in SVG");
        assert!(out.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(out.contains("main"));
    }

    #[test]
    fn folds_stacks_outermost_first_and_sanitises_separators() {
        let stack = WeightedStack {
            frames: vec!["main".into(), "f;g".into(), "h\ni".into()],
            weight: 7,
        };
        assert_eq!(folded_line(&stack), "main;f:g;h i 7");
        let empty = WeightedStack {
            frames: vec![],
            weight: 1,
        };
        assert_eq!(folded_line(&empty), "?? 1");
    }

    #[test]
    fn empty_input_still_renders() {
        let out = svg(&[], "nothing leaked");
        assert!(out.starts_with("<?xml"));
        assert!(out.contains("nothing leaked"));
    }
}
