//! Hand-written scanning of the `.heapsnapshot` JSON: top-level sections, flat number arrays
//! (parsed in parallel chunks cut at record boundaries) and the string array (spans only).

use rayon::prelude::*;

use super::V8Error;
use crate::input::HeapBytes;

/// Byte ranges of the top-level sections we use (array bodies exclude the brackets).
#[derive(Debug, Default)]
pub struct Sections {
    /// The `snapshot` object, braces included.
    pub snapshot: Option<std::ops::Range<usize>>,
    pub nodes: Option<FlatArray>,
    pub edges: Option<FlatArray>,
    pub locations: Option<FlatArray>,
    /// Allocation tracking: the flat `trace_function_infos` and the nested `trace_tree` (the
    /// whole value, brackets included).
    pub trace_function_infos: Option<FlatArray>,
    pub trace_tree: Option<std::ops::Range<usize>>,
    /// The `strings` array body.
    pub strings: Option<std::ops::Range<usize>>,
    /// Whether the `strings` array was taken to end at the file's last `]` without scanning it
    /// (see [`sections`]); listing its strings confirms it.
    pub strings_assumed_last: bool,
}

fn syntax(offset: usize, expected: &'static str) -> V8Error {
    V8Error::Syntax {
        offset: offset as u64,
        expected,
    }
}

#[inline]
fn skip_ws(bytes: &[u8], mut pos: usize) -> usize {
    while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
        pos += 1;
    }
    pos
}

fn expect(bytes: &[u8], pos: usize, byte: u8, what: &'static str) -> Result<usize, V8Error> {
    if bytes.get(pos) == Some(&byte) {
        Ok(pos + 1)
    } else {
        Err(syntax(pos, what))
    }
}

/// Skips a JSON string starting at the opening quote; returns the position after the closing
/// quote and whether the string contains escapes.
pub fn skip_string(bytes: &[u8], pos: usize) -> Result<(usize, bool), V8Error> {
    let mut i = expect(bytes, pos, b'"', "a string")?;
    let mut escaped = false;
    loop {
        let Some(found) = quote_or_backslash(&bytes[i..]) else {
            return Err(syntax(
                bytes.len(),
                "the end of a string (the file is truncated)",
            ));
        };
        i += found;
        if bytes[i] == b'\\' {
            escaped = true;
            i += 2;
            if i > bytes.len() {
                return Err(syntax(
                    bytes.len(),
                    "the end of a string (the file is truncated)",
                ));
            }
        } else {
            return Ok((i + 1, escaped));
        }
    }
}

/// The position of the first `"` or `\` in `text`. Snapshot strings are mostly short: the
/// first 32 bytes are searched eight at a time before handing the rest to `memchr2` (whose
/// per-call set-up cost more than the search for a million short strings).
fn quote_or_backslash(text: &[u8]) -> Option<usize> {
    for (k, word) in text.chunks_exact(8).take(4).enumerate() {
        let word = u64::from_le_bytes(word.try_into().unwrap());
        let hits = bytes_equal(word, b'"') | bytes_equal(word, b'\\');
        if hits != 0 {
            return Some(k * 8 + (hits.trailing_zeros() / 8) as usize);
        }
    }
    let searched = (text.len() / 8).min(4) * 8;
    memchr::memchr2(b'"', b'\\', &text[searched..]).map(|p| searched + p)
}

/// The bytes of `word` equal to `byte`: 0x80 in each, 0 in the others.
#[inline(always)]
fn bytes_equal(word: u64, byte: u8) -> u64 {
    // A matching byte becomes 0; a byte is 0 when neither its low seven bits (plus 0x7f: carries
    // into the top bit) nor its top bit are set. No carry crosses bytes.
    let x = word ^ (u64::from(byte) * 0x0101_0101_0101_0101);
    !(((x & 0x7F7F_7F7F_7F7F_7F7F) + 0x7F7F_7F7F_7F7F_7F7F) | x) & 0x8080_8080_8080_8080
}

/// Skips any JSON value starting at `pos`; returns the position after it.
fn skip_value(bytes: &[u8], pos: usize) -> Result<usize, V8Error> {
    let mut depth = 0usize;
    let mut i = pos;
    loop {
        let Some(&b) = bytes.get(i) else {
            return Err(syntax(i, "the end of a value (the file is truncated)"));
        };
        match b {
            b'"' => {
                i = skip_string(bytes, i)?.0;
                if depth == 0 {
                    return Ok(i);
                }
            }
            b'[' | b'{' => {
                depth += 1;
                i += 1;
            }
            b']' | b'}' => {
                if depth == 0 {
                    return Ok(i);
                }
                depth -= 1;
                i += 1;
                if depth == 0 {
                    return Ok(i);
                }
            }
            b',' if depth == 0 => return Ok(i),
            _ => i += 1,
        }
    }
}

/// A flat array of numbers found by [`sections`]: its body and the commas counted on the way,
/// so cutting it into chunks needs no second pass over its bytes.
#[derive(Debug, Clone)]
pub struct FlatArray {
    /// The body, brackets excluded.
    pub body: std::ops::Range<usize>,
    /// Consecutive blocks covering the body: (absolute start, commas in the block).
    blocks: Vec<(usize, usize)>,
}

/// Bytes of one parallel task of the end-of-array search.
const SCAN_BLOCK: usize = 4 << 20;
/// Bytes searched for `]` and then counted while still in cache.
const SCAN_SUB_BLOCK: usize = 128 << 10;

/// Finds `]` in `block` and counts the commas before it, in cache-sized pieces.
fn end_and_commas(block: &[u8], sub_block: usize) -> (Option<usize>, usize) {
    let mut commas = 0;
    for (k, piece) in block.chunks(sub_block).enumerate() {
        let end = memchr::memchr(b']', piece);
        commas += memchr::memchr_iter(b',', &piece[..end.unwrap_or(piece.len())]).count();
        if let Some(end) = end {
            return (Some(k * sub_block + end), commas);
        }
    }
    (None, commas)
}

/// Finds the body of a flat array of numbers starting at `pos` (the `[`), searching blocks in
/// parallel and counting commas as it goes; returns the array and the position after the `]`.
fn flat_array(bytes: &[u8], pos: usize) -> Result<(FlatArray, usize), V8Error> {
    flat_array_in_blocks(bytes, pos, SCAN_BLOCK, SCAN_SUB_BLOCK)
}

/// [`flat_array`] with the given block sizes (`block` bytes per task, `sub_block` per pass).
fn flat_array_in_blocks(
    bytes: &[u8],
    pos: usize,
    block: usize,
    sub_block: usize,
) -> Result<(FlatArray, usize), V8Error> {
    let start = expect(bytes, pos, b'[', "an array `[`")?;
    let batch = rayon::current_num_threads().max(1) * 2;
    let mut blocks = Vec::new();
    let mut at = start;
    while at < bytes.len() {
        let starts: Vec<usize> = (0..batch)
            .map(|k| at + k * block)
            .take_while(|s| *s < bytes.len())
            .collect();
        let found: Vec<(Option<usize>, usize)> = starts
            .par_iter()
            .map(|&s| end_and_commas(&bytes[s..(s + block).min(bytes.len())], sub_block))
            .collect();
        for (&s, (end, commas)) in starts.iter().zip(found) {
            blocks.push((s, commas));
            if let Some(end) = end {
                let end = s + end;
                return Ok((
                    FlatArray {
                        body: start..end,
                        blocks,
                    },
                    end + 1,
                ));
            }
        }
        at = starts.last().map_or(bytes.len(), |s| s + block);
    }
    Err(syntax(
        bytes.len(),
        "the end of an array (the file is truncated)",
    ))
}

/// Finds the top-level sections of a snapshot. Unknown sections are skipped.
///
/// With `assume_strings_last`, when the `strings` key comes after `snapshot`, `nodes` and `edges`
/// (as V8 writes it) and the file ends with `]` and `}`, the strings array is taken to end at
/// that `]` and the scan stops there: skipping a million short strings one by one costs as much
/// as listing them. Listing them ([`strings`]) then fails unless the body holds only strings,
/// i.e. unless the assumption held; the caller scans again without it.
pub fn sections(bytes: &[u8], assume_strings_last: bool) -> Result<Sections, V8Error> {
    let mut sections = Sections::default();
    let mut pos = expect(bytes, skip_ws(bytes, 0), b'{', "`{` at the start")?;
    loop {
        pos = skip_ws(bytes, pos);
        if bytes.get(pos) == Some(&b'}') {
            break;
        }
        let (after_key, _) = skip_string(bytes, pos)?;
        let key = &bytes[pos + 1..after_key - 1];
        pos = skip_ws(bytes, after_key);
        pos = expect(bytes, pos, b':', "`:` after a key")?;
        pos = skip_ws(bytes, pos);
        match key {
            b"nodes" | b"edges" | b"locations" | b"trace_function_infos" => {
                let (body, after) = flat_array(bytes, pos)?;
                match key {
                    b"nodes" => sections.nodes = Some(body),
                    b"edges" => sections.edges = Some(body),
                    b"locations" => sections.locations = Some(body),
                    _ => sections.trace_function_infos = Some(body),
                }
                pos = after;
            }
            b"trace_tree" => {
                let end = skip_value(bytes, pos)?;
                sections.trace_tree = Some(pos..end);
                pos = end;
            }
            b"strings" => {
                let start = expect(bytes, pos, b'[', "the `strings` array")?;
                let others_found = sections.snapshot.is_some()
                    && sections.nodes.is_some()
                    && sections.edges.is_some();
                if assume_strings_last
                    && others_found
                    && let Some(end) = final_bracket(bytes).filter(|end| *end >= start)
                {
                    sections.strings = Some(start..end);
                    sections.strings_assumed_last = true;
                    break;
                }
                let end = skip_value(bytes, pos)?;
                sections.strings = Some(start..end - 1);
                pos = end;
            }
            b"snapshot" => {
                let end = skip_value(bytes, pos)?;
                sections.snapshot = Some(pos..end);
                pos = end;
            }
            _ => pos = skip_value(bytes, pos)?,
        }
        pos = skip_ws(bytes, pos);
        match bytes.get(pos) {
            Some(b',') => pos += 1,
            Some(b'}') => break,
            _ => return Err(syntax(pos, "`,` or `}` between top-level sections")),
        }
    }
    Ok(sections)
}

/// The position of the `]` that ends the file (before its final `}` and whitespace), if it ends
/// that way.
fn final_bracket(bytes: &[u8]) -> Option<usize> {
    let brace = bytes.iter().rposition(|b| !b.is_ascii_whitespace())?;
    if bytes[brace] != b'}' {
        return None;
    }
    let bracket = bytes[..brace]
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())?;
    (bytes[bracket] == b']').then_some(bracket)
}

/// Visits the strings of the `strings` array body: `(offset, len, escaped)` of each string's
/// inside (quotes excluded), in order.
pub fn strings(
    bytes: &[u8],
    body: std::ops::Range<usize>,
    mut each: impl FnMut(usize, usize, bool) -> Result<(), V8Error>,
) -> Result<(), V8Error> {
    let mut pos = skip_ws(bytes, body.start);
    if pos >= body.end {
        return Ok(());
    }
    loop {
        let (after, escaped) = skip_string(bytes, pos)?;
        each(pos + 1, after - pos - 2, escaped)?;
        pos = skip_ws(bytes, after);
        if pos >= body.end {
            return Ok(());
        }
        pos = expect(bytes, pos, b',', "`,` between strings")?;
        pos = skip_ws(bytes, pos);
    }
}

/// A piece of a flat number array that starts at a record boundary.
#[derive(Debug, Clone)]
pub struct Chunk {
    /// Byte range in the file.
    pub bytes: std::ops::Range<usize>,
    /// Index of the first record of the chunk.
    pub first_record: usize,
    /// Number of records in the chunk.
    pub records: usize,
}

/// Cuts a flat array found by [`sections`] into chunks of about `min_bytes` or more, each
/// starting at a record (`record_len` numbers) boundary, from the commas counted by the scan.
/// Returns the chunks and the total number count.
pub fn array_chunks(
    bytes: &[u8],
    array: &FlatArray,
    record_len: usize,
    min_bytes: usize,
) -> Result<(Vec<Chunk>, usize), V8Error> {
    let body = array.body.clone();
    if bytes[body.clone()].iter().all(|b| b.is_ascii_whitespace()) {
        return Ok((Vec::new(), 0));
    }
    // A cut right after the first comma at or after a block start: its number index is the
    // count of commas before it.
    let mut cuts = vec![(0usize, 0usize)];
    let mut commas_before = 0usize;
    let mut last_cut_block = body.start;
    for &(start, commas) in &array.blocks {
        if start > body.start
            && start < body.end
            && start - last_cut_block >= min_bytes
            && let Some(i) = memchr::memchr(b',', &bytes[start..body.end])
        {
            let cut = start + i + 1 - body.start;
            let index = commas_before + 1;
            if cut < body.len() && cut > cuts.last().map_or(0, |c| c.0) {
                cuts.push((cut, index));
                last_cut_block = start;
            }
        }
        commas_before += commas;
    }
    chunks_at(bytes, body, record_len, &cuts, commas_before + 1)
}

/// Chunks of `body` from cut points `(offset in body right after a comma or 0, index of the
/// number there)`, each moved forward to the next record boundary.
fn chunks_at(
    bytes: &[u8],
    body: std::ops::Range<usize>,
    record_len: usize,
    cuts: &[(usize, usize)],
    total_numbers: usize,
) -> Result<(Vec<Chunk>, usize), V8Error> {
    let text = &bytes[body.clone()];
    if !total_numbers.is_multiple_of(record_len) {
        return Err(V8Error::Shape {
            offset: body.start as u64,
            what: format!(
                "the array holds {total_numbers} numbers, not a multiple of its {record_len} fields"
            ),
        });
    }
    // Move every cut forward to the next record boundary.
    let mut starts: Vec<(usize, usize)> = Vec::with_capacity(cuts.len());
    for &(mut cut, mut at_index) in cuts {
        while at_index % record_len != 0 {
            let next = memchr::memchr(b',', &text[cut..]).map_or(text.len(), |p| cut + p + 1);
            cut = next;
            at_index += 1;
        }
        if starts.last().is_none_or(|(c, _)| *c < cut) && cut < text.len() {
            starts.push((cut, at_index));
        }
    }
    let mut result = Vec::with_capacity(starts.len());
    for (i, &(cut, number_index)) in starts.iter().enumerate() {
        let (end, end_index) = starts
            .get(i + 1)
            .copied()
            .unwrap_or((text.len(), total_numbers));
        result.push(Chunk {
            bytes: body.start + cut..body.start + end,
            first_record: number_index / record_len,
            records: (end_index - number_index) / record_len,
        });
    }
    Ok((result, total_numbers))
}

/// Parses the numbers of one chunk, calling `each(record_in_chunk, &fields)` per record.
/// Numbers are non-negative integers separated by commas and optional whitespace.
///
/// Digits are read eight at a time ([`leading_digits`]) while 16 bytes remain in the chunk, one
/// at a time near its end and for numbers of 16 digits or more; whitespace is allowed only
/// around numbers.
pub fn parse_records(
    bytes: &[u8],
    chunk: &Chunk,
    record_len: usize,
    mut each: impl FnMut(usize, &[u64]) -> Result<(), V8Error>,
) -> Result<(), V8Error> {
    let mut fields = [0u64; 16];
    let text = &bytes[chunk.bytes.clone()];
    let at = |i: usize| chunk.bytes.start + i;
    let mut field = 0usize;
    let mut record = 0usize;
    let mut i = 0usize;
    while i < text.len() {
        let (value, end) = number_at(text, i).map_err(|(i, expected)| syntax(at(i), expected))?;
        fields[field] = value;
        field += 1;
        if field == record_len {
            if record >= chunk.records {
                return Err(syntax(at(end), "fewer numbers in the array"));
            }
            each(record, &fields[..record_len])?;
            record += 1;
            field = 0;
        }
        i = end;
        match text.get(i) {
            Some(b',') => i += 1,
            None => break,
            Some(_) => {
                i = skip_ws(text, i);
                match text.get(i) {
                    Some(b',') => i += 1,
                    None => break,
                    Some(b) if b.is_ascii_digit() => {
                        return Err(syntax(at(i), "`,` between numbers"));
                    }
                    Some(_) => return Err(syntax(at(i), "a non-negative integer")),
                }
            }
        }
    }
    if field != 0 || record != chunk.records {
        return Err(syntax(chunk.bytes.end, "a complete record of numbers"));
    }
    Ok(())
}

/// Powers of ten up to 10^8.
const POW10: [u64; 9] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
];

/// The number starting at `i` (after optional whitespace) and the position after its digits,
/// or the position and description of what was expected there.
#[inline(always)]
fn number_at(text: &[u8], i: usize) -> Result<(u64, usize), (usize, &'static str)> {
    if let Some(words) = text.get(i..i + 16) {
        let (high, len) = leading_digits(u64::from_le_bytes(words[..8].try_into().unwrap()));
        if (1..8).contains(&len) {
            return Ok((high, i + len));
        }
        if len == 8 {
            let (low, len) = leading_digits(u64::from_le_bytes(words[8..].try_into().unwrap()));
            if len < 8 {
                return Ok((high * POW10[len] + low, i + 8 + len));
            }
        }
    }
    number_at_slowly(text, i)
}

/// [`number_at`] one byte at a time, with overflow checks.
#[cold]
fn number_at_slowly(text: &[u8], i: usize) -> Result<(u64, usize), (usize, &'static str)> {
    let start = skip_ws(text, i);
    let mut value = 0u64;
    let mut end = start;
    while let Some(d) = text
        .get(end)
        .map(|b| b.wrapping_sub(b'0'))
        .filter(|d| *d < 10)
    {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(d)))
            .ok_or((end, "a number below 2^64"))?;
        end += 1;
    }
    if end == start {
        return Err((start, "a non-negative integer"));
    }
    Ok((value, end))
}

/// The value and count of the decimal digits at the start of `word` (8 bytes read
/// little-endian, so the first byte is the lowest), at most 8.
#[inline(always)]
fn leading_digits(word: u64) -> (u64, usize) {
    // Each byte minus '0': a digit byte becomes 0..=9. A byte is a non-digit when that is 10 or
    // more, i.e. when adding 0x76 or the byte itself sets its top bit. Borrows and carries only
    // cross from a non-digit byte into the bytes above it, past the first non-digit.
    let x = word.wrapping_sub(0x3030_3030_3030_3030);
    let non_digit = (x.wrapping_add(0x7676_7676_7676_7676) | x) & 0x8080_8080_8080_8080;
    let len = (non_digit.trailing_zeros() / 8) as usize;
    match len {
        0 => return (0, 0),
        // Type fields, flags and small counts: no combining needed.
        1 => return (x & 0x0F, 1),
        // Up to four digits fit in the low half: pairs and quads only.
        2..=4 => {
            let v = (x << (8 * (4 - len))) & 0xFFFF_FFFF;
            let v = ((v & 0x0F0F_0F0F).wrapping_mul(10 << 8 | 1)) >> 8;
            let v = ((v & 0x00FF_00FF).wrapping_mul(100 << 16 | 1)) >> 16;
            return (v & 0xFFFF, len);
        }
        _ => {}
    }
    // Move the digits to the top, leading zeros below, then combine pairs, quads and octets.
    let v = x << (8 * (8 - len));
    let v = ((v & 0x0F0F_0F0F_0F0F_0F0F).wrapping_mul(10 << 8 | 1)) >> 8;
    let v = ((v & 0x00FF_00FF_00FF_00FF).wrapping_mul(100 << 16 | 1)) >> 16;
    let v = ((v & 0x0000_FFFF_0000_FFFF).wrapping_mul(10_000 << 32 | 1)) >> 32;
    (v, len)
}

/// Parses `chunks` in parallel: chunk `i` writes through `columns[i]` (its disjoint slices of
/// the output columns) with `each(chunk, columns, record_in_chunk, fields)`. The bytes of each
/// chunk are released from memory once parsed.
pub fn parse_parallel<C: Send>(
    bytes: &HeapBytes,
    chunks: &[Chunk],
    record_len: usize,
    columns: Vec<C>,
    each: impl Fn(&Chunk, &mut C, usize, &[u64]) -> Result<(), V8Error> + Sync,
) -> Result<(), V8Error> {
    let data: &[u8] = bytes.as_ref();
    chunks
        .par_iter()
        .zip(columns)
        .try_for_each(|(chunk, mut slots)| {
            let parsed = parse_records(data, chunk, record_len, |i, f| {
                each(chunk, &mut slots, i, f)
            });
            bytes.release(chunk.bytes.clone());
            parsed
        })
}

/// An error about record `i` of a chunk (`what` names the record kind, e.g. "node").
pub fn record_error(chunk: &Chunk, what: &str, i: usize, detail: String) -> V8Error {
    V8Error::Shape {
        offset: chunk.bytes.start as u64,
        what: format!("{what} {}: {detail}", chunk.first_record + i),
    }
}

/// Splits `slice` into consecutive mutable pieces of the given lengths.
pub fn split_mut<'a, T>(mut slice: &'a mut [T], lengths: &[usize]) -> Vec<&'a mut [T]> {
    let mut out = Vec::with_capacity(lengths.len());
    for &len in lengths {
        let (head, tail) = std::mem::take(&mut slice).split_at_mut(len);
        out.push(head);
        slice = tail;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records of `text` as a flat array scanned in blocks of about `len / pieces` bytes and
    /// cut at every block.
    fn all_records(text: &str, record_len: usize, pieces: usize) -> Result<Vec<Vec<u64>>, V8Error> {
        let bytes = format!("[{text}]").into_bytes();
        let block = (bytes.len() / pieces).max(1);
        let (array, after) = flat_array_in_blocks(&bytes, 0, block, block.div_ceil(2))?;
        assert_eq!(after, bytes.len());
        assert_eq!(array.body, 1..bytes.len() - 1);
        let (chunks, _) = array_chunks(&bytes, &array, record_len, 0)?;
        let mut out = Vec::new();
        for chunk in &chunks {
            let mut local = Vec::new();
            parse_records(&bytes, chunk, record_len, |i, f| {
                assert_eq!(i, local.len());
                local.push(f.to_vec());
                Ok(())
            })?;
            assert_eq!(out.len(), chunk.first_record);
            out.extend(local);
        }
        Ok(out)
    }

    #[test]
    fn chunks_start_at_record_boundaries() {
        let text = "1,2,3,\n4,5,6,7,8,9,10,11,12 , 13,14,15";
        for pieces in 1..12 {
            let records = all_records(text, 3, pieces).unwrap();
            assert_eq!(records.len(), 5, "pieces {pieces}");
            assert_eq!(records[4], vec![13, 14, 15]);
        }
    }

    #[test]
    fn rejects_bad_numbers() {
        assert!(all_records("1,2,x", 3, 1).is_err());
        assert!(all_records("1,2", 3, 1).is_err());
        assert!(all_records("1,-2,3", 3, 1).is_err());
        assert!(all_records("1,,3", 3, 1).is_err());
        assert!(all_records("1 2,3,4", 3, 1).is_err());
        assert!(all_records("99999999999999999999999,1,1", 3, 1).is_err());
        assert!(all_records("", 3, 1).unwrap().is_empty());
    }

    #[test]
    fn reads_numbers_of_every_length() {
        // Every length from 1 to 19 digits (and u64::MAX), at every alignment, with and without whitespace,
        // read through the eight-digit fast path and the byte-wise end of the chunk.
        let mut numbers = Vec::new();
        let mut text = String::new();
        for digits in 1..=19u32 {
            for lead in ["1", "9", "5"] {
                let n: u64 = format!("{lead}{}", "0123456789".repeat(2))[..digits as usize]
                    .parse()
                    .unwrap();
                numbers.push(n);
                let sep = match digits % 3 {
                    0 => ",",
                    1 => "\n,",
                    _ => " , ",
                };
                text.push_str(&format!("{n}{sep}"));
            }
        }
        numbers.push(u64::MAX);
        text.push_str(&u64::MAX.to_string());
        for pieces in [1, 3, 7] {
            let records = all_records(&text, 1, pieces).unwrap();
            let flat: Vec<u64> = records.into_iter().flatten().collect();
            assert_eq!(flat, numbers, "pieces {pieces}");
        }
        assert!(all_records("18446744073709551616", 1, 1).is_err());
    }

    proptest::proptest! {
        #[test]
        fn parses_like_splitting_at_commas(
            numbers in proptest::collection::vec(
                proptest::prop_oneof![0u64..10, 0u64..100_000, 0u64..100_000_000, proptest::num::u64::ANY],
                0..60,
            ),
            separators in proptest::collection::vec(
                proptest::prop_oneof![proptest::strategy::Just(","), proptest::strategy::Just("\n,"), proptest::strategy::Just(" , "), proptest::strategy::Just(",\n")],
                60,
            ),
            record_len in 1usize..8,
            pieces in 1usize..9,
        ) {
            let whole = numbers.len() / record_len * record_len;
            let numbers = &numbers[..whole];
            let mut text = String::new();
            for (k, n) in numbers.iter().enumerate() {
                if k > 0 {
                    text.push_str(separators[k]);
                }
                text.push_str(&n.to_string());
            }
            let records = all_records(&text, record_len, pieces).unwrap();
            let flat: Vec<u64> = records.into_iter().flatten().collect();
            proptest::prop_assert_eq!(&flat[..], numbers);
        }
    }

    proptest::proptest! {
        #[test]
        fn finds_quotes_and_backslashes_like_memchr(
            text in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just(b'"'),
                    proptest::strategy::Just(b'\\'),
                    proptest::num::u8::ANY,
                    b'a'..=b'z',
                ],
                0..80,
            ),
            skip in 0usize..40,
        ) {
            let text = &text[skip.min(text.len())..];
            proptest::prop_assert_eq!(
                quote_or_backslash(text),
                memchr::memchr2(b'"', b'\\', text)
            );
        }
    }

    #[test]
    fn leading_digits_stop_at_the_first_non_digit() {
        for len in 0..=8usize {
            for stop in [b',', b' ', b'\n', b'/', b':', b']', 0xff, 0] {
                let mut word = [stop; 8];
                for (k, b) in word.iter_mut().take(len).enumerate() {
                    *b = b'0' + ((k * 7 + 3) % 10) as u8;
                }
                let expected: u64 = std::str::from_utf8(&word[..len])
                    .unwrap()
                    .parse()
                    .unwrap_or(0);
                assert_eq!(
                    leading_digits(u64::from_le_bytes(word)),
                    (expected, len),
                    "{word:?}"
                );
            }
        }
    }

    #[test]
    fn finds_sections_in_any_order() {
        let text = br#" {"strings":["a","b\"c"], "extra":{"x":[1,[2]]}, "nodes":[1,2],
            "snapshot":{"meta":{}},"edges":[]}"#;
        let s = sections(text, true).unwrap();
        assert!(!s.strings_assumed_last, "strings came before nodes");
        assert_eq!(&text[s.nodes.clone().unwrap().body], b"1,2");
        assert_eq!(&text[s.snapshot.clone().unwrap()], br#"{"meta":{}}"#);
        let mut seen = Vec::new();
        strings(text, s.strings.unwrap(), |o, l, e| {
            seen.push((String::from_utf8_lossy(&text[o..o + l]).into_owned(), e));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, vec![("a".into(), false), ("b\\\"c".into(), true)]);
        assert!(sections(br#"{"nodes":[1,2"#, true).is_err());
        assert!(sections(br#"{"strings":["abc"#, true).is_err());
    }

    #[test]
    fn strings_assumed_last_are_confirmed_by_listing_them() {
        let list = |text: &[u8], body| {
            let mut seen = Vec::new();
            strings(text, body, |o, l, _| {
                seen.push(String::from_utf8_lossy(&text[o..o + l]).into_owned());
                Ok(())
            })
            .map(|()| seen)
        };
        // V8's order: the assumption holds (the string holds a `]` and an escaped quote).
        let last = br#"{"snapshot":{},"nodes":[1],"edges":[],"strings":["a]","b\"]"]}
"#;
        let s = sections(last, true).unwrap();
        assert!(s.strings_assumed_last);
        assert_eq!(list(last, s.strings.unwrap()).unwrap(), ["a]", "b\\\"]"]);
        // A section after the strings: listing the assumed body fails, a full scan is right.
        let not_last = br#"{"snapshot":{},"nodes":[1],"edges":[],"strings":["a"],"x":["b"]}"#;
        let s = sections(not_last, true).unwrap();
        assert!(s.strings_assumed_last);
        assert!(list(not_last, s.strings.unwrap()).is_err());
        let s = sections(not_last, false).unwrap();
        assert!(!s.strings_assumed_last);
        assert_eq!(list(not_last, s.strings.unwrap()).unwrap(), ["a"]);
    }
}
