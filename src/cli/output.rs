//! Output of the client commands: aligned tables for people, JSON for
//! scripts (`--format json`).

use std::io::Write;

use serde_json::Value;

/// How admin commands print their results.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    #[default]
    Table,
    Json,
}

/// A table: a header row and rows of cells, printed with columns aligned
/// (two spaces between columns, no trailing spaces).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table { headers: headers.iter().map(|h| h.to_string()).collect(), rows: Vec::new() }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The aligned text, one line per row, header first.
    pub fn render(&self) -> String {
        let columns = self.headers.len().max(self.rows.iter().map(Vec::len).max().unwrap_or(0));
        let mut widths = vec![0usize; columns];
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                if i + 1 < row.len() {
                    line.extend(std::iter::repeat_n(' ', widths[i] - cell.chars().count()));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Prints text to stdout; a closed pipe (`| head`) is not an error.
pub fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Prints a JSON value (pretty, with a final newline).
pub fn print_json(value: &Value) {
    let mut s = serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".into());
    s.push('\n');
    print(&s);
}

/// Comma-separated integers (`1,2,3`), as Kafka's tools print replica lists.
pub fn join_ids(ids: &[i32]) -> String {
    ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_aligned() {
        let mut t = Table::new(&["TOPIC", "PARTITIONS", "X"]);
        t.row(vec!["a".into(), "1".into(), "".into()]);
        t.row(vec!["longer-name".into(), "12".into(), "z".into()]);
        assert_eq!(t.render(), "TOPIC        PARTITIONS  X\na            1\nlonger-name  12          z\n");
    }

    #[test]
    fn empty_table_is_its_header() {
        assert_eq!(Table::new(&["A", "B"]).render(), "A  B\n");
        assert_eq!(join_ids(&[1, 2, 3]), "1,2,3");
        assert_eq!(join_ids(&[]), "");
    }
}
