//! The line of a value inside a JSON text, found by a path of keys and indices.
//!
//! serde_json's `Value` keeps no positions, so an error about a value (a Prometheus sample that
//! is not `[time, "number"]`) would otherwise name line 1 of a pretty-printed file. The text has
//! already been parsed as valid JSON when this runs, so the walk only skips whitespace, strings
//! and nested values; a path it cannot follow gives `None`.

/// One step of a path: a member of an object or an element of an array.
#[derive(Debug, Clone, Copy)]
pub enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// The 1-based line where the value at `path` starts in `text`.
pub fn line_of(text: &str, path: &[Step<'_>]) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut at = skip_whitespace(bytes, 0);
    for step in path {
        at = match *step {
            Step::Key(key) => member(bytes, at, key)?,
            Step::Index(index) => element(bytes, at, index)?,
        };
    }
    Some(1 + bytes[..at].iter().filter(|b| **b == b'\n').count())
}

fn skip_whitespace(bytes: &[u8], mut at: usize) -> usize {
    while bytes.get(at).is_some_and(|b| b.is_ascii_whitespace()) {
        at += 1;
    }
    at
}

/// The end of the string starting at `at` (just past its closing quote).
fn string_end(bytes: &[u8], mut at: usize) -> Option<usize> {
    at += 1;
    loop {
        match *bytes.get(at)? {
            b'\\' => at += 2,
            b'"' => return Some(at + 1),
            _ => at += 1,
        }
    }
}

/// The end of the value starting at `at`.
fn value_end(bytes: &[u8], at: usize) -> Option<usize> {
    match *bytes.get(at)? {
        b'"' => string_end(bytes, at),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = at;
            loop {
                match *bytes.get(i)? {
                    b'"' => {
                        i = string_end(bytes, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.checked_sub(1)?;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        _ => {
            let mut i = at;
            while bytes
                .get(i)
                .is_some_and(|b| !matches!(b, b',' | b'}' | b']') && !b.is_ascii_whitespace())
            {
                i += 1;
            }
            Some(i)
        }
    }
}

/// Where the value of member `key` of the object at `at` starts.
fn member(bytes: &[u8], at: usize, key: &str) -> Option<usize> {
    if bytes.get(at) != Some(&b'{') {
        return None;
    }
    let mut i = skip_whitespace(bytes, at + 1);
    while bytes.get(i) == Some(&b'"') {
        let name_end = string_end(bytes, i)?;
        let name = &bytes[i + 1..name_end - 1];
        let colon = skip_whitespace(bytes, name_end);
        let value = skip_whitespace(bytes, colon + 1);
        if name == key.as_bytes() {
            return Some(value);
        }
        let after = skip_whitespace(bytes, value_end(bytes, value)?);
        if bytes.get(after) != Some(&b',') {
            return None;
        }
        i = skip_whitespace(bytes, after + 1);
    }
    None
}

/// Where element `index` of the array at `at` starts.
fn element(bytes: &[u8], at: usize, index: usize) -> Option<usize> {
    if bytes.get(at) != Some(&b'[') {
        return None;
    }
    let mut i = skip_whitespace(bytes, at + 1);
    for _ in 0..index {
        let after = skip_whitespace(bytes, value_end(bytes, i)?);
        if bytes.get(after) != Some(&b',') {
            return None;
        }
        i = skip_whitespace(bytes, after + 1);
    }
    matches!(bytes.get(i), Some(b) if *b != b']').then_some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_found_past_strings_and_nesting() {
        let text = "{\n  \"status\": \"a \\\" ] }\",\n  \"data\": {\"result\": [\n    {\"metric\": {\"x\": [1, {}]},\n     \"values\": [[1, \"2\"],\n                [3, 4]]}\n  ]}\n}";
        let path = [
            Step::Key("data"),
            Step::Key("result"),
            Step::Index(0),
            Step::Key("values"),
            Step::Index(1),
        ];
        assert_eq!(line_of(text, &path), Some(6));
        assert_eq!(line_of(text, &path[..4]), Some(5));
        assert_eq!(line_of(text, &[Step::Key("status")]), Some(2));
        assert_eq!(line_of(text, &[Step::Key("missing")]), None);
        assert_eq!(line_of(text, &[Step::Index(0)]), None);
        let past_end = [Step::Key("data"), Step::Key("result"), Step::Index(1)];
        assert_eq!(line_of(text, &past_end), None);
    }
}
