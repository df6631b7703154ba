//! Escaping of untrusted strings (names from dumps, traces, command lines) for XML/SVG/HTML output.

use std::borrow::Cow;
use std::fmt::Write;

/// Escapes `text` for use in XML/SVG/HTML text nodes and double- or single-quoted attributes.
///
/// Characters an XML 1.0 document cannot hold at all (control characters other than tab,
/// newline and carriage return) and the bidirectional formatting characters ([`hidden`]) are
/// written as visible `\u{…}` text, as [`terminal`] writes them.
pub fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if not_xml(c) || hidden(c) => push_visible(&mut out, c),
            c => out.push(c),
        }
    }
    out
}

/// Characters an XML 1.0 document cannot hold, even escaped (C0 controls other than tab,
/// newline and carriage return, U+FFFE, U+FFFF), and DEL.
fn not_xml(c: char) -> bool {
    (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{7f}' | '\u{fffe}' | '\u{ffff}')
}

/// The bidirectional formatting characters (ALM, LRM, RLM, the embeddings and overrides
/// U+202A–U+202E, the isolates U+2066–U+2069): a name holding one displays its text in another
/// order than it is (the "Trojan Source" trick, CVE-2021-42574), so none is shown raw. Also the
/// line and paragraph separators U+2028, U+2029, which some viewers break a line at.
fn hidden(c: char) -> bool {
    matches!(
        c,
        '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
    )
}

/// Writes `c` as visible text: `\r` for a carriage return, else `\u{1b}` style, as Rust's
/// `escape_debug` writes it (the form the HPROF string values already take).
fn push_visible(out: &mut String, c: char) {
    if c == '\r' {
        out.push_str("\\r");
    } else {
        let _ = write!(out, "\\u{{{:x}}}", c as u32);
    }
}

/// `text` with the characters [`xml`] writes as `\u{…}` so written, and nothing escaped: for
/// strings handed to a writer that escapes markup itself (inferno's flamegraphs escape `<`, `>`,
/// `&` and quotes, not control characters, which made the SVG not well-formed).
pub fn xml_chars(text: &str) -> Cow<'_, str> {
    made_visible(text, |c| not_xml(c) || hidden(c))
}

/// `text` with every character `unwanted` picks written as visible text ([`push_visible`];
/// borrowed when there is none).
fn made_visible(text: &str, unwanted: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !text.contains(&unwanted) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unwanted(c) {
            push_visible(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A command line as a shell reads it back: each word bare when it holds only characters no
/// shell treats specially, else single-quoted (`'a b'`, a quote as `'\''`), or, when it holds
/// control characters, in bash's `$'…'` form with those written as escapes (`$'\e[31m'`), so
/// that nothing raw reaches the terminal or the file and the text pastes back as it ran.
pub fn shell_words(words: &[String]) -> String {
    let mut out = String::new();
    for (i, word) in words.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&shell_word(word));
    }
    out
}

/// One word of [`shell_words`].
pub fn shell_word(word: &str) -> Cow<'_, str> {
    let control = |c: char| c.is_control() || hidden(c);
    let plain = |(i, c): (usize, char)| {
        c.is_ascii_alphanumeric()
            || "%+,-./:@_".contains(c)
            || (c == '=' && i > 0)
            || (!c.is_ascii() && !control(c) && !c.is_whitespace())
    };
    if !word.is_empty() && word.char_indices().all(plain) {
        return Cow::Borrowed(word);
    }
    if !word.contains(control) {
        return Cow::Owned(format!("'{}'", word.replace('\'', r"'\''")));
    }
    let mut out = String::from("$'");
    for c in word.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{1b}' => out.push_str("\\e"),
            c if (c as u32) < 0x80 && control(c) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if control(c) => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    Cow::Owned(out)
}

/// Makes `text` safe to print on a terminal: control characters other than tab and newline (ESC
/// starts the sequences that recolour, move the cursor or retitle the window; CR overwrites the
/// line), DEL, the C1 controls U+0080–U+009F (U+009B is a one-character CSI to terminals that
/// honour 8-bit controls) and the bidirectional formatting characters ([`hidden`]) are written
/// as visible `\u{1b}`-style text (`\r` for CR). Names from dumps and traces reach the text
/// reports unchanged otherwise. JSON text is unaffected: it never holds these characters raw.
pub fn terminal(text: &str) -> Cow<'_, str> {
    made_visible(text, |c| {
        (c < ' ' && c != '\t' && c != '\n') || ('\u{7f}'..='\u{9f}').contains(&c) || hidden(c)
    })
}

/// Keeps a name on one line of a text report: newline, carriage return and tab become `\n`,
/// `\r` and `\t` as in a string literal (a property or class name may hold them, and one would
/// otherwise break a table row or a path in two). Other control characters are left to
/// [`terminal`], which every text report goes through.
pub fn one_line(text: &str) -> Cow<'_, str> {
    if !text.contains(['\n', '\r', '\t']) {
        return Cow::Borrowed(text);
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
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::{one_line, shell_words, terminal, xml, xml_chars};

    #[test]
    fn terminal_text_loses_control_sequences_only() {
        assert_eq!(
            terminal("a\u{1b}[2Jb\rc\u{0}d\te\nf\u{7f}g\u{9b}2Jh\u{a0}é\u{202e}x"),
            r"a\u{1b}[2Jb\rc\u{0}d".to_string()
                + "\te\nf"
                + r"\u{7f}g\u{9b}2Jh"
                + "\u{a0}é"
                + r"\u{202e}x"
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
        assert_eq!(
            xml("a\u{0}b\u{1b}c\td\u{202e}e\u{2066}"),
            r"a\u{0}b\u{1b}c".to_string() + "\td" + r"\u{202e}e\u{2066}"
        );
    }

    #[test]
    fn xml_chars_replaces_what_xml_forbids_and_escapes_nothing() {
        assert_eq!(
            xml_chars("a<b>&\u{1}\u{1b}[31m\t\u{7f}é"),
            r"a<b>&\u{1}\u{1b}[31m".to_string() + "\t" + r"\u{7f}é"
        );
        assert!(matches!(xml_chars("main"), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn command_lines_are_quoted_as_a_shell_reads_them() {
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            shell_words(&words(&[
                "./prog", "-o", "x=1", "a b", "it's", "", "=x", "é"
            ])),
            r#"./prog -o x=1 'a b' 'it'\''s' '' '=x' é"#
        );
        assert_eq!(
            shell_words(&words(&[
                "./simple",
                "arg\u{1b}[31m x",
                "a\u{1}'\\\n\u{85}"
            ])),
            r#"./simple $'arg\e[31m x' $'a\x01\'\\\n\u0085'"#
        );
        assert!(!shell_words(&words(&["\u{1b}\u{7f}\u{9b}"])).contains(|c: char| c.is_control()));
    }
}
