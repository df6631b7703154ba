//! Escaping of untrusted strings (names from dumps, traces, command lines) for XML/SVG/HTML output.

/// Escapes `text` for use in XML/SVG/HTML text nodes and double- or single-quoted attributes.
///
/// Control characters other than tab, newline and carriage return are not allowed in XML 1.0
/// at all, so they are replaced by U+FFFD rather than escaped.
pub fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(ch),
            c if (c as u32) < 0x20 || c == '\u{7f}' || c == '\u{fffe}' || c == '\u{ffff}' => {
                out.push('\u{fffd}')
            }
            c => out.push(c),
        }
    }
    out
}

/// Makes `text` safe to print on a terminal: control characters other than tab and newline (ESC
/// starts the sequences that recolour, move the cursor or retitle the window; CR overwrites the
/// line), DEL and the C1 controls U+0080–U+009F (U+009B is a one-character CSI to terminals that
/// honour 8-bit controls) become U+FFFD. Names from dumps and traces reach the text reports
/// unchanged otherwise. JSON text is unaffected: it never holds these characters raw.
pub fn terminal(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char =
        |c: char| (c < ' ' && c != '\t' && c != '\n') || ('\u{7f}'..='\u{9f}').contains(&c);
    if !text.contains(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(
        text.chars()
            .map(|c| if unsafe_char(c) { '\u{fffd}' } else { c })
            .collect(),
    )
}

/// Keeps a name on one line of a text report: newline, carriage return and tab become `\n`,
/// `\r` and `\t` as in a string literal (a property or class name may hold them, and one would
/// otherwise break a table row or a path in two). Other control characters are left to
/// [`terminal`], which every text report goes through.
pub fn one_line(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains(['\n', '\r', '\t']) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::{one_line, terminal, xml};

    #[test]
    fn terminal_text_loses_control_sequences_only() {
        assert_eq!(
            terminal("a\u{1b}[2Jb\rc\u{0}d\te\nf\u{7f}g\u{9b}2Jh\u{a0}é"),
            "a\u{fffd}[2Jb\u{fffd}c\u{fffd}d\te\nf\u{fffd}g\u{fffd}2Jh\u{a0}é"
        );
        assert!(matches!(terminal("plain\n"), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn names_stay_on_one_line() {
        assert_eq!(
            one_line("evil\nname\tTAB\r\u{1}"),
            "evil\\nname\\tTAB\\r\u{1}"
        );
        assert!(matches!(one_line("plain é"), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            xml(r#"<script>alert("x" & 'y')</script>"#),
            "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;"
        );
    }

    #[test]
    fn replaces_control_characters() {
        assert_eq!(xml("a\u{0}b\u{1b}c\td"), "a\u{fffd}b\u{fffd}c\td");
    }
}
