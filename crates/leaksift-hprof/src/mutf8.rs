//! Java's modified UTF-8, the encoding of HPROF UTF8 records (class, field, method, source file
//! names): decoded to text once, the same way everywhere a name leaves the dump.

use std::borrow::Cow;

/// Decodes the bytes of an HPROF UTF8 record.
///
/// HotSpot writes names in Java's *modified UTF-8* (JVMS §4.4.7): a character outside the Basic
/// Multilingual Plane is written as its UTF-16 surrogate pair, each surrogate encoded on its own
/// as 3 bytes (`ED A0..AF xx` then `ED B0..BF xx`, 6 bytes in all, where UTF-8 has 4), and
/// U+0000 as `C0 80`. Standard UTF-8 decoding turns such a character into six U+FFFD, so
/// `Supp$𐐀Widget` would read `Supp$������Widget`.
///
/// The rule: bytes that are valid UTF-8 are the text as they are (borrowed: names are nearly
/// always ASCII, so this is the common case and costs one validation); otherwise valid UTF-8
/// runs are kept, `C0 80` becomes U+0000, a high surrogate followed by a low surrogate (both in
/// 3-byte form) becomes the supplementary character, and everything else (a lone or reversed
/// surrogate, a byte that starts no character, a character cut off at the end) becomes U+FFFD.
/// A 3-byte surrogate without its partner (or cut off after 2 bytes) is one UTF-16 unit, so
/// it becomes one U+FFFD, not one per byte. Dumps are untrusted input: this never panics.
pub fn decode(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => Cow::Owned(decode_modified(bytes)),
    }
}

/// [`decode`] of bytes that are not valid UTF-8.
fn decode_modified(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut rest = bytes;
    while !rest.is_empty() {
        let (valid, error_len) = match std::str::from_utf8(rest) {
            Ok(text) => (text, None),
            Err(error) => {
                let valid = rest.get(..error.valid_up_to()).unwrap_or_default();
                // The prefix `from_utf8` vouched for: it cannot fail.
                (
                    std::str::from_utf8(valid).unwrap_or_default(),
                    error.error_len(),
                )
            }
        };
        out.push_str(valid);
        rest = rest.get(valid.len()..).unwrap_or_default();
        if rest.is_empty() {
            break;
        }
        let used = if let [0xC0, 0x80, ..] = rest {
            out.push('\0');
            2
        } else if let Some(high) = surrogate(rest) {
            match rest.get(3..).and_then(surrogate) {
                Some(low) if is_high(high) && !is_high(low) => {
                    let code = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
                    out.push(char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER));
                    6
                }
                _ => {
                    out.push(char::REPLACEMENT_CHARACTER);
                    3
                }
            }
        } else if let [0xED, 0xA0..=0xBF, ..] = rest {
            // A surrogate cut off by the end or by a byte that continues nothing: one unit.
            out.push(char::REPLACEMENT_CHARACTER);
            2
        } else {
            // Not a character: skip what UTF-8 decoding rejects (the rest when it is a
            // character cut off at the end).
            out.push(char::REPLACEMENT_CHARACTER);
            error_len.unwrap_or(rest.len())
        };
        rest = rest.get(used..).unwrap_or_default();
    }
    out
}

/// The UTF-16 surrogate (U+D800..U+DFFF) the first 3 bytes encode, if they do (`ED A0..BF
/// 80..BF`).
fn surrogate(bytes: &[u8]) -> Option<u32> {
    match *bytes {
        [0xED, second @ 0xA0..=0xBF, third @ 0x80..=0xBF, ..] => {
            Some(0xD000 | (u32::from(second & 0x3F) << 6) | u32::from(third & 0x3F))
        }
        _ => None,
    }
}

fn is_high(surrogate: u32) -> bool {
    surrogate < 0xDC00
}

/// Encodes `text` in modified UTF-8, as HotSpot writes it (for hand-built test dumps).
#[cfg(test)]
pub fn encode(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        if c == '\0' {
            out.extend_from_slice(&[0xC0, 0x80]);
        } else if c.len_utf8() < 4 {
            let mut buffer = [0; 4];
            out.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
        } else {
            let mut units = [0; 2];
            for &unit in c.encode_utf16(&mut units).iter() {
                let unit = u32::from(unit);
                out.extend_from_slice(&[
                    0xE0 | (unit >> 12) as u8,
                    0x80 | ((unit >> 6) & 0x3F) as u8,
                    0x80 | (unit & 0x3F) as u8,
                ]);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decodes_supplementary_characters_and_nul() {
        // U+10400 (𐐀) is D801 DC00: ED A0 81 ED B0 80.
        let name = b"Supp$\xED\xA0\x81\xED\xB0\x80Widget";
        assert_eq!(decode(name), "Supp$𐐀Widget");
        assert_eq!(decode(b"a\xC0\x80b"), "a\0b");
        assert_eq!(decode(&encode("keep𐐀")), "keep𐐀");
        // U+10FFFF, the last code point: DBFF DFFF.
        assert_eq!(decode(b"\xED\xAF\xBF\xED\xBF\xBF"), "\u{10FFFF}");
        // Valid UTF-8 around the modified parts, a 4-byte UTF-8 character too.
        assert_eq!(
            decode(
                "é\u{1F600}"
                    .bytes()
                    .chain(encode("\0𐐀ü"))
                    .collect::<Vec<_>>()
                    .as_slice()
            ),
            "é\u{1F600}\0𐐀ü"
        );
    }

    #[test]
    fn whatever_is_not_a_character_is_one_replacement() {
        const R: &str = "\u{FFFD}";
        // A lone high surrogate, a lone low surrogate, a reversed pair: one U+FFFD per surrogate.
        assert_eq!(decode(b"a\xED\xA0\x81b"), format!("a{R}b"));
        assert_eq!(decode(b"a\xED\xB0\x80b"), format!("a{R}b"));
        assert_eq!(decode(b"\xED\xB0\x80\xED\xA0\x81"), format!("{R}{R}"));
        // Two high surrogates, then a low one: the second pair is a character.
        assert_eq!(
            decode(b"\xED\xA0\x81\xED\xA0\x81\xED\xB0\x80"),
            format!("{R}𐐀")
        );
        // A high surrogate cut off by the end, and one whose partner is cut off.
        assert_eq!(decode(b"x\xED\xA0"), format!("x{R}"));
        assert_eq!(decode(b"\xED\xA0\x81\xED\xB0"), format!("{R}{R}"));
        // Bytes that start no character, `C0` without `80`.
        assert_eq!(decode(b"\xFFa\x80"), format!("{R}a{R}"));
        assert_eq!(decode(b"\xC0"), R);
        assert_eq!(decode(b"\xC0\x81z"), format!("{R}{R}z"));
        assert_eq!(decode(b""), "");
    }

    #[test]
    fn valid_utf8_is_borrowed() {
        for text in ["", "java/lang/String", "Grüße", "\u{1F600}", "\0"] {
            assert!(matches!(decode(text.as_bytes()), Cow::Borrowed(t) if t == text));
        }
    }

    /// Every sequence of up to two bytes, and of three bytes starting with the lead bytes the
    /// decoder treats specially: no panic, and valid UTF-8 comes back unchanged.
    #[test]
    fn short_byte_sequences_decode_without_panicking() {
        let check = |bytes: &[u8]| {
            let text = decode(bytes);
            if let Ok(valid) = std::str::from_utf8(bytes) {
                assert_eq!(text, valid);
            }
            // At most one character per byte.
            assert!(text.chars().count() <= bytes.len(), "{bytes:x?}");
        };
        check(&[]);
        for a in 0..=255u8 {
            check(&[a]);
            for b in 0..=255u8 {
                check(&[a, b]);
            }
        }
        for a in [0xC0, 0xED, 0xF0] {
            for b in 0..=255u8 {
                for c in 0..=255u8 {
                    check(&[a, b, c]);
                }
            }
        }
    }

    proptest! {
        #[test]
        fn any_bytes_decode_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let text = decode(&bytes);
            if let Ok(valid) = std::str::from_utf8(&bytes) {
                prop_assert_eq!(text, valid);
            }
        }

        #[test]
        fn valid_utf8_is_returned_unchanged(text in any::<String>()) {
            prop_assert!(matches!(decode(text.as_bytes()), Cow::Borrowed(t) if t == text));
        }

        #[test]
        fn modified_utf8_round_trips(text in any::<String>()) {
            let bytes = encode(&text);
            prop_assert_eq!(decode(&bytes), text);
        }

        /// Modified UTF-8 pieces mixed with noise: the pieces still decode.
        #[test]
        fn noise_does_not_swallow_the_next_character(
            noise in proptest::collection::vec(any::<u8>(), 0..4),
            text in "[a-z\u{10000}-\u{10FFFF}]{1,8}",
        ) {
            let mut bytes = noise.clone();
            bytes.push(b'|');
            bytes.extend(encode(&text));
            let decoded = decode(&bytes).into_owned();
            prop_assert!(decoded.ends_with(&format!("|{text}")), "{:?}", decoded);
        }
    }
}
