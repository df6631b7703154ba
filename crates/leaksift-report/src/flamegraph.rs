//! Flamegraph SVGs through the `inferno` crate, from stacks given outermost frame first.
//!
//! inferno escapes every frame name and the title when it writes the SVG (quick-xml text and
//! attribute escaping); the test below holds it to that with a `<script>` name. It does not
//! touch control characters, which XML 1.0 does not allow even escaped (a symbol or an argument
//! holding ESC made the SVG not well-formed, and browsers refused it): every string given to it
//! goes through [`crate::escape::xml_chars`] first.

use std::io::Write;

use crate::escape::xml_chars;

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
    options.title = xml_chars(title).into_owned();
    options.count_name = xml_chars(count_name).into_owned();
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
/// name would split the frame (the format has no escape), so it becomes U+037E, which looks
/// the same; newlines would split the line; characters XML cannot hold are written as visible
/// `\u{…}` text.
fn folded_line(stack: &WeightedStack) -> String {
    let mut line = String::new();
    for (i, frame) in stack.frames.iter().enumerate() {
        if i > 0 {
            line.push(';');
        }
        line.extend(xml_chars(frame).chars().map(|c| match c {
            ';' => '\u{37e}',
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
    fn control_characters_never_reach_the_svg() {
        let stacks = [WeightedStack {
            frames: vec!["main".into(), "odd\u{1}\u{1b}[31mred\u{7f}".into()],
            weight: 10,
        }];
        let out = svg(&stacks, "Bytes lost at exit: ./prog arg\u{1b}[31m\u{8}");
        let bad = out
            .chars()
            .find(|&c| (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || c == '\u{7f}');
        assert_eq!(bad, None, "{out}");
        assert!(out.contains(r"odd\u{1}\u{1b}[31mred\u{7f}"), "{out}");
        assert!(out.contains(r"./prog arg\u{1b}[31m\u{8}"), "{out}");
    }

    #[test]
    fn folds_stacks_outermost_first_and_sanitises_separators() {
        let stack = WeightedStack {
            frames: vec!["main".into(), "f;g".into(), "h\ni".into()],
            weight: 7,
        };
        assert_eq!(folded_line(&stack), "main;f\u{37e}g;h i 7");
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
