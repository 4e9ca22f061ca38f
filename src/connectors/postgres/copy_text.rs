//! PostgreSQL's `COPY … TO STDOUT` text format read row by row: tab-separated fields with
//! backslash escapes, `\N` for NULL, however the chunks of the stream cut the lines.

use crate::error::{Result, SluiceError};

/// The session COPY text is read in: UTC times, ISO dates, shortest exact floats.
pub const SESSION_SETTINGS: &str =
    "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET extra_float_digits = 1";

/// One row of COPY text: its fields unescaped, `None` for NULL.
pub struct CopyRow<'a> {
    data: &'a [u8],
    fields: &'a [Option<(usize, usize)>],
}

impl CopyRow<'_> {
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Fails unless the row has one field per column.
    pub fn expect_fields(&self, columns: usize) -> Result<()> {
        if self.len() == columns {
            Ok(())
        } else {
            Err(SluiceError::Execution(format!(
                "PostgreSQL's COPY output has a row of {} fields where {columns} columns were expected",
                self.len()
            )))
        }
    }

    pub fn field(&self, index: usize) -> Result<Option<&str>> {
        match self.fields.get(index).copied().flatten() {
            None => Ok(None),
            Some((start, end)) => std::str::from_utf8(&self.data[start..end])
                .map(Some)
                .map_err(|e| SluiceError::Execution(format!("PostgreSQL sent text that is not UTF-8: {e}"))),
        }
    }
}

/// Splits the chunks of a `COPY … TO STDOUT` in text format into rows, however the chunks cut
/// the lines.
#[derive(Default)]
pub struct CopyTextRows {
    pending: Vec<u8>,
    unescaped: Vec<u8>,
    fields: Vec<Option<(usize, usize)>>,
}

impl CopyTextRows {
    /// Calls `each` with every row `chunk` completes.
    pub fn push(&mut self, chunk: &[u8], mut each: impl FnMut(&CopyRow<'_>) -> Result<()>) -> Result<()> {
        let mut rest = chunk;
        if !self.pending.is_empty() {
            let Some(end) = memchr(rest) else {
                self.pending.extend_from_slice(rest);
                return Ok(());
            };
            let mut line = std::mem::take(&mut self.pending);
            line.extend_from_slice(&rest[..end]);
            self.row(&line, &mut each)?;
            rest = &rest[end + 1..];
        }
        while let Some(end) = memchr(rest) {
            self.row(&rest[..end], &mut each)?;
            rest = &rest[end + 1..];
        }
        self.pending.extend_from_slice(rest);
        Ok(())
    }

    /// Fails when the stream ended inside a row.
    pub fn finish(&self) -> Result<()> {
        if self.pending.is_empty() {
            Ok(())
        } else {
            Err(SluiceError::Execution("PostgreSQL's COPY output ended inside a row".to_string()))
        }
    }

    fn row(&mut self, line: &[u8], each: &mut impl FnMut(&CopyRow<'_>) -> Result<()>) -> Result<()> {
        self.unescaped.clear();
        self.fields.clear();
        for field in line.split(|b| *b == b'\t') {
            if field == b"\\N" {
                self.fields.push(None);
                continue;
            }
            let start = self.unescaped.len();
            unescape_copy_field(field, &mut self.unescaped);
            self.fields.push(Some((start, self.unescaped.len())));
        }
        each(&CopyRow { data: &self.unescaped, fields: &self.fields })
    }
}

fn memchr(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|b| *b == b'\n')
}

/// COPY text's backslash escapes: `\b \f \n \r \t \v \\`, `\ooo` octal and `\xhh` hexadecimal.
fn unescape_copy_field(field: &[u8], out: &mut Vec<u8>) {
    if !field.contains(&b'\\') {
        out.extend_from_slice(field);
        return;
    }
    let mut i = 0;
    while i < field.len() {
        let b = field[i];
        i += 1;
        if b != b'\\' || i == field.len() {
            out.push(b);
            continue;
        }
        let escaped = field[i];
        i += 1;
        match escaped {
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut value = u32::from(escaped - b'0');
                for _ in 0..2 {
                    match field.get(i) {
                        Some(d @ b'0'..=b'7') => {
                            value = value * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push(value as u8);
            }
            b'x' if field.get(i).is_some_and(u8::is_ascii_hexdigit) => {
                let digits = field[i..].iter().take(2).take_while(|d| d.is_ascii_hexdigit()).count();
                let text = std::str::from_utf8(&field[i..i + digits]).unwrap_or("0");
                out.push(u8::from_str_radix(text, 16).unwrap_or(0));
                i += digits;
            }
            other => out.push(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(chunks: &[&[u8]]) -> Vec<Vec<Option<String>>> {
        let mut reader = CopyTextRows::default();
        let mut rows = Vec::new();
        for chunk in chunks {
            reader
                .push(chunk, |row| {
                    rows.push((0..row.len()).map(|i| row.field(i).unwrap().map(str::to_string)).collect());
                    Ok(())
                })
                .unwrap();
        }
        reader.finish().unwrap();
        rows
    }

    #[test]
    fn copy_text_is_split_into_unescaped_fields_across_chunks() {
        let got = rows(&[b"1\tNode1\t\\N\n2\tta", b"b\\there\\\\\tx\\nline\n", b"3\t\\101\\x42\t\n"]);
        let s = |v: &str| Some(v.to_string());
        assert_eq!(
            got,
            vec![
                vec![s("1"), s("Node1"), None],
                vec![s("2"), s("tab\there\\"), s("x\nline")],
                vec![s("3"), s("AB"), s("")],
            ]
        );
    }

    #[test]
    fn a_stream_ending_inside_a_row_is_an_error() {
        let mut reader = CopyTextRows::default();
        reader.push(b"1\tpartial", |_| Ok(())).unwrap();
        assert!(reader.finish().is_err());
    }
}
