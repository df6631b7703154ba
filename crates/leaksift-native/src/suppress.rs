//! LeakSanitizer-style suppressions: `leak:PATTERN` lines matched against the function, module
//! and source file names of a leak's allocation stack.
//!
//! Matching follows sanitizer_common's `TemplateMatch`: the pattern matches anywhere in the name
//! unless anchored with `^` (start) or `$` (end), and `*` matches any run of characters. Blank
//! lines and lines starting with `#` are ignored; anything else is an error naming the line.

use crate::symbolize::Frame;

/// A malformed suppressions line.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("line {line}: {reason}")]
pub struct SuppressionError {
    /// 1-based line number.
    pub line: usize,
    pub reason: String,
}

/// The parsed `leak:` patterns, in file order.
#[derive(Debug, Default, Clone)]
pub struct Suppressions {
    patterns: Vec<String>,
}

impl Suppressions {
    /// Parses a suppressions file's text.
    pub fn parse(text: &str) -> Result<Self, SuppressionError> {
        let mut patterns = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let error = |reason: String| SuppressionError {
                line: index + 1,
                reason,
            };
            let Some((kind, pattern)) = line.split_once(':') else {
                return Err(error(format!("expected `leak:PATTERN`, found `{line}`")));
            };
            if kind.trim() != "leak" {
                return Err(error(format!(
                    "unsupported suppression type `{}` (only `leak` is supported)",
                    kind.trim()
                )));
            }
            let pattern = pattern.trim();
            if pattern.is_empty() {
                return Err(error("empty pattern after `leak:`".to_string()));
            }
            patterns.push(pattern.to_string());
        }
        Ok(Suppressions { patterns })
    }

    /// The patterns, in file order.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// The first pattern matching any frame's function, module or file name.
    pub fn matching(&self, frames: &[Frame]) -> Option<&str> {
        self.patterns
            .iter()
            .find(|pattern| {
                frames.iter().any(|frame| {
                    template_match(pattern, &frame.function)
                        || template_match(pattern, &frame.module)
                        || frame
                            .file
                            .as_deref()
                            .is_some_and(|file| template_match(pattern, file))
                })
            })
            .map(String::as_str)
    }
}

/// A `leak:` pattern that suppresses leaks allocated at `frames` (innermost first), as
/// valgrind's `--gen-suppressions` writes one per leak: the function of the innermost frame
/// outside the allocator and the C and C++ runtime libraries (`strdup`, `getline`, a
/// `std::string` growing in libstdc++…, whose pattern would silence every such leak of the
/// program), so the pattern names the code that allocated, anchored at both ends. Characters
/// the template syntax gives a meaning (`*`, `$`, `^`) and control characters (a newline would
/// end the `leak:` line) become `*`, which matches them.
///
/// When that frame has no symbol (a stripped library), the pattern is its module's path, as
/// valgrind writes an `obj:` line: naming the next function outwards instead gave `^main$`,
/// which silences every leak of the program. A frame in no known module (JIT code) gives
/// `None` for the same reason. When every frame is in the runtime libraries, the innermost
/// with a symbol, else the innermost module; `None` when there is none either.
pub fn suppression_for(frames: &[Frame]) -> Option<String> {
    let candidates = || frames.iter().filter(|f| !f.is_in_allocator());
    let in_runtime_library = |frame: &Frame| {
        let name = frame.module.rsplit('/').next().unwrap_or(&frame.module);
        [
            "libc.so",
            "ld-linux",
            "libstdc++.so",
            "libc++.so",
            "libc++abi.so",
            "libgcc_s.so",
        ]
        .iter()
        .any(|library| name.starts_with(library))
    };
    let named = |frame: &&Frame| frame.function != crate::symbolize::UNKNOWN;
    let in_module = |frame: &&Frame| frame.module != crate::symbolize::UNKNOWN;
    let anchored = |name: &str| {
        let escaped: String = name
            .chars()
            .map(|c| {
                if matches!(c, '*' | '$' | '^') || c.is_control() {
                    '*'
                } else {
                    c
                }
            })
            .collect();
        format!("^{escaped}$")
    };
    match candidates().find(|f| !in_runtime_library(f)) {
        Some(frame) if named(&frame) => Some(anchored(&frame.function)),
        Some(frame) => in_module(&frame).then(|| anchored(&frame.module)),
        None => candidates()
            .find(named)
            .map(|f| anchored(&f.function))
            .or_else(|| candidates().find(in_module).map(|f| anchored(&f.module))),
    }
}

/// sanitizer_common's `TemplateMatch`: substring match with `*` wildcards and `^`/`$` anchors.
/// An empty name never matches.
pub fn template_match(template: &str, name: &str) -> bool {
    if name.is_empty() {
        return false;
    }
    let (mut template, mut anchored_start) = match template.strip_prefix('^') {
        Some(rest) => (rest, true),
        None => (template, false),
    };
    let mut rest = name;
    let mut after_asterisk = false;
    while let Some(first) = template.chars().next() {
        if first == '*' {
            template = &template[1..];
            anchored_start = false;
            after_asterisk = true;
            continue;
        }
        if first == '$' {
            return rest.is_empty() || after_asterisk;
        }
        if rest.is_empty() {
            return false;
        }
        let literal_end = template.find(['*', '$']).unwrap_or(template.len());
        let literal = &template[..literal_end];
        let Some(found) = rest.find(literal) else {
            return false;
        };
        if anchored_start && found != 0 {
            return false;
        }
        rest = &rest[found + literal.len()..];
        template = &template[literal_end..];
        anchored_start = false;
        after_asterisk = false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(function: &str, module: &str, file: Option<&str>) -> Frame {
        Frame {
            function: function.to_string(),
            file: file.map(str::to_string),
            line: Some(1),
            module: module.to_string(),
            offset: 0,
            inlined: false,
        }
    }

    #[test]
    fn template_match_follows_sanitizer_rules() {
        assert!(template_match("leaky", "make_leaky_buffer"));
        assert!(!template_match("^leaky", "make_leaky_buffer"));
        assert!(template_match("^make_*buffer$", "make_leaky_buffer"));
        assert!(!template_match("^make_*buf$", "make_leaky_buffer"));
        assert!(template_match("libfoo.so", "/usr/lib/libfoo.so.1"));
        assert!(template_match("*", "anything"));
        assert!(template_match("a*$", "abc"));
        assert!(!template_match("x", ""));
        assert!(template_match("ns::Widget::*make", "ns::Widget::make"));
    }

    #[test]
    fn parses_comments_and_reports_bad_lines() {
        let s = Suppressions::parse("# c\n\nleak:foo\n  leak: bar*baz  \n").unwrap();
        assert_eq!(s.patterns(), ["foo", "bar*baz"]);
        assert_eq!(Suppressions::parse("leak:a\nrace:b\n").unwrap_err().line, 2);
        assert_eq!(Suppressions::parse("leak:\n").unwrap_err().line, 1);
        assert_eq!(Suppressions::parse("\n\nnonsense\n").unwrap_err().line, 3);
    }

    #[test]
    fn matches_function_module_or_file() {
        let s =
            Suppressions::parse("leak:^third_party_init$\nleak:libvendor\nleak:gen/*.c").unwrap();
        let stack = [frame("helper", "/app/bin", Some("/src/main.c"))];
        assert_eq!(s.matching(&stack), None);
        let stack = [frame("third_party_init", "/app/bin", None)];
        assert_eq!(s.matching(&stack), Some("^third_party_init$"));
        let stack = [frame("??", "/opt/libvendor.so", None)];
        assert_eq!(s.matching(&stack), Some("libvendor"));
        let stack = [frame("f", "/app/bin", Some("/src/gen/table.c"))];
        assert_eq!(s.matching(&stack), Some("gen/*.c"));
    }
}

#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn arbitrary_text_parses_or_fails_with_a_line(text in "(?s).{0,200}") {
            match Suppressions::parse(&text) {
                Ok(s) => {
                    for pattern in s.patterns() {
                        let _ = template_match(pattern, &text);
                    }
                }
                Err(e) => prop_assert!(e.line >= 1 && e.line <= text.lines().count()),
            }
        }

        #[test]
        fn arbitrary_patterns_and_names_never_panic(pattern in "[\\^$*a-c:é]{0,12}", name in "[\\^$*a-c:é]{0,12}") {
            let _ = template_match(&pattern, &name);
        }

        #[test]
        fn a_literal_pattern_matches_exactly_the_names_containing_it(pattern in "[a-c]{1,4}", name in "[a-c]{0,8}") {
            prop_assert_eq!(template_match(&pattern, &name), name.contains(&pattern));
        }
    }

    fn at(function: &str, module: &str) -> Frame {
        Frame {
            function: function.to_string(),
            file: None,
            line: None,
            module: module.to_string(),
            offset: 0x40,
            inlined: false,
        }
    }

    #[test]
    fn generated_suppressions_name_the_allocating_code_and_match_its_stack() {
        let libc = "/usr/lib/x86_64-linux-gnu/libc.so.6";
        let stacks = [
            // Through the allocator and a C-library wrapper: the caller of strdup.
            (
                vec![
                    at("malloc", libc),
                    at("strdup", libc),
                    at("remember_name", "/app/bin"),
                    at("main", "/app/bin"),
                ],
                Some("^remember_name$"),
            ),
            // A C++ name with characters the syntax reserves.
            (
                vec![
                    at("operator new(unsigned long)", "/usr/lib/libstdc++.so.6"),
                    at("Matrix::operator*(Matrix const&)", "/app/bin"),
                ],
                Some("^Matrix::operator*(Matrix const&)$"),
            ),
            // A std::string growing inside libstdc++: the program's function, not a pattern
            // that would silence every string leak.
            (
                vec![
                    at("operator new(unsigned long)", "/usr/lib/libstdc++.so.6"),
                    at(
                        "std::__cxx11::basic_string<char, std::char_traits<char>, \
                         std::allocator<char> >::_M_mutate(unsigned long, unsigned long, \
                         char const*, unsigned long)",
                        "/usr/lib/x86_64-linux-gnu/libstdc++.so.6.0.30",
                    ),
                    at("make_record(int)", "/app/bin"),
                    at("main", "/app/bin"),
                ],
                Some("^make_record(int)$"),
            ),
            // Only C-library frames: the innermost of them outside the allocator.
            (
                vec![at("malloc", libc), at("getdelim", libc)],
                Some("^getdelim$"),
            ),
            // No symbols: the module.
            (
                vec![at("malloc", libc), at("??", "/opt/vendor/libblob.so")],
                Some("^/opt/vendor/libblob.so$"),
            ),
            (vec![at("??", "??")], None),
            // The allocating frame in a stripped library: its module, not the next function
            // outwards (`^main$` silenced every leak of the program), nor the C library's
            // start-up code when `main` has no symbol either.
            (
                vec![
                    at("malloc", libc),
                    at("??", "/app/libplug.so"),
                    at("main", "/app/bin"),
                ],
                Some("^/app/libplug.so$"),
            ),
            (
                vec![
                    at("malloc", libc),
                    at("??", "/app/bin"),
                    at("__libc_start_call_main", libc),
                ],
                Some("^/app/bin$"),
            ),
            // Allocated from code in no module (JIT): nothing narrower than `main` to name.
            (
                vec![at("malloc", libc), at("??", "??"), at("main", "/app/bin")],
                None,
            ),
            // Control characters (a newline ended the `leak:` line, and the file written was
            // refused when read back).
            (
                vec![at("malloc", libc), at("tab\tnew\nline\u{1b}x", "/app/bin")],
                Some("^tab*new*line*x$"),
            ),
        ];
        for (frames, expected) in stacks {
            let pattern = suppression_for(&frames);
            assert_eq!(pattern.as_deref(), expected, "{frames:?}");
            if let Some(pattern) = pattern {
                let parsed = Suppressions::parse(&format!("leak:{pattern}")).unwrap();
                assert!(
                    parsed.matching(&frames).is_some(),
                    "{pattern} misses its own stack"
                );
                // Anchored: a longer name with the same start is not suppressed.
                let mut other = frames.clone();
                for frame in &mut other {
                    frame.function.push_str("_v2");
                    frame.module.push_str(".1");
                }
                assert!(
                    parsed.matching(&other).is_none(),
                    "{pattern} matches {other:?}"
                );
            }
        }
    }
}
