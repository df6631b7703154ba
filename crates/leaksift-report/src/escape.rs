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

#[cfg(test)]
mod tests {
    use super::xml;

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
