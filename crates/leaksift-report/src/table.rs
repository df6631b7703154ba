//! Plain-text tables with aligned columns for terminal output.

use std::borrow::Cow;

use crate::escape;

/// How a column's cells are aligned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A text table: a header row and data rows, rendered with two spaces between columns.
#[derive(Debug, Default)]
pub struct Table {
    header: Vec<String>,
    align: Vec<Align>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// Creates a table with the given `(title, alignment)` columns.
    pub fn new(columns: &[(&str, Align)]) -> Self {
        Table {
            header: columns.iter().map(|(t, _)| t.to_string()).collect(),
            align: columns.iter().map(|(_, a)| *a).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row; missing cells render empty, extra cells are ignored. A cell's line breaks
    /// and tabs are written as `\n` and `\t` ([`escape::one_line`]): a row is one line.
    pub fn row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut row: Vec<String> = cells
            .into_iter()
            .map(|cell| {
                let cell: String = cell.into();
                match escape::one_line(&cell) {
                    Cow::Borrowed(_) => cell,
                    Cow::Owned(escaped) => escaped,
                }
            })
            .collect();
        row.resize(self.header.len(), String::new());
        self.rows.push(row);
    }

    /// Number of data rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the table has no data rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Renders the table; the last column is not padded so long names do not leave trailing space.
    pub fn render(&self) -> String {
        let widths: Vec<usize> = (0..self.header.len())
            .map(|c| {
                self.rows
                    .iter()
                    .map(|r| r[c].chars().count())
                    .chain(std::iter::once(self.header[c].chars().count()))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(self.rows.iter()) {
            let last = row.len().saturating_sub(1);
            for (c, cell) in row.iter().enumerate() {
                if c > 0 {
                    out.push_str("  ");
                }
                let pad = widths[c] - cell.chars().count();
                match self.align[c] {
                    Align::Right => {
                        out.extend(std::iter::repeat_n(' ', pad));
                        out.push_str(cell);
                    }
                    Align::Left => {
                        out.push_str(cell);
                        if c != last {
                            out.extend(std::iter::repeat_n(' ', pad));
                        }
                    }
                }
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_columns() {
        let mut t = Table::new(&[("class", Align::Left), ("bytes", Align::Right)]);
        t.row(["Foo", "12"]);
        t.row(["LongerName", "3456"]);
        assert_eq!(
            t.render(),
            "class       bytes\nFoo            12\nLongerName   3456\n"
        );
    }

    #[test]
    fn a_row_is_one_line_whatever_its_cells_hold() {
        let mut t = Table::new(&[("n", Align::Right), ("class", Align::Left)]);
        t.row(["1", "Evil\nName\tX"]);
        assert_eq!(t.render(), "n  class\n1  Evil\\nName\\tX\n");
    }
}
