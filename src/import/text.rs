//! The text an import writes: PostgreSQL's COPY text read row by row, and re-written as Sqoop's
//! delimited text (Java's `toString` of each JDBC value, `null` for NULL, no quoting), or the
//! CSV `--direct` passes through.

use super::{
    ImportJob,
    plan::{Column, ColumnKind},
};
use crate::error::{Result, SluiceError};

/// Sqoop's reading of a delimiter argument: a character, `\t`-style escapes, `\0ooo` octal,
/// `\0xhh` hexadecimal.
pub fn parse_delimiter(text: &str) -> Result<char> {
    let invalid = || SluiceError::Config(format!("Cannot understand character argument: {text}"));
    let code = |digits: &str, radix| {
        u32::from_str_radix(digits, radix).ok().and_then(char::from_u32).ok_or_else(invalid)
    };
    if let Some(hex) = text.strip_prefix("\\0x").or_else(|| text.strip_prefix("\\0X")) {
        return code(hex, 16);
    }
    if let Some(octal) = text.strip_prefix("\\0") {
        return if octal.is_empty() { Ok('\0') } else { code(octal, 8) };
    }
    let mut chars = text.chars();
    match (chars.next(), chars.next(), chars.next()) {
        (None, ..) => Err(SluiceError::Config("Character argument expected.".to_string())),
        (Some('\\'), None, _) => Ok('\\'),
        (Some('\\'), Some(escaped), None) => match escaped {
            'b' => Ok('\u{8}'),
            'n' => Ok('\n'),
            'r' => Ok('\r'),
            't' => Ok('\t'),
            '"' | '\'' | '\\' => Ok(escaped),
            _ => Err(invalid()),
        },
        (Some('\\'), ..) => Err(invalid()),
        (Some(c), ..) => Ok(c),
    }
}

/// Sqoop's escapes in a string argument such as `--null-string '\\N'`: `\\` is one backslash,
/// `\t`, `\n`, `\r`, `\b` their characters.
pub fn unescape_argument(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('b') => out.push('\u{8}'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

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

/// `--direct`'s output: COPY's CSV lines with Sqoop's line terminator in place of `\n`.
pub struct DirectLines {
    terminator: Option<Vec<u8>>,
}

impl DirectLines {
    pub fn new(lines_terminated_by: char) -> DirectLines {
        let terminator = (lines_terminated_by != '\n').then(|| lines_terminated_by.to_string().into_bytes());
        DirectLines { terminator }
    }

    /// Appends the bytes to write for `chunk` to `out`; returns how many lines it ends.
    pub fn push(&self, chunk: &[u8], out: &mut Vec<u8>) -> u64 {
        let lines = chunk.iter().filter(|b| **b == b'\n').count() as u64;
        match &self.terminator {
            None => out.extend_from_slice(chunk),
            Some(terminator) => {
                for piece in chunk.split_inclusive(|b| *b == b'\n') {
                    match piece.strip_suffix(b"\n") {
                        Some(line) => {
                            out.extend_from_slice(line);
                            out.extend_from_slice(terminator);
                        }
                        None => out.extend_from_slice(piece),
                    }
                }
            }
        }
        lines
    }
}

/// The session an import's text is read in: UTC times, ISO dates, shortest exact floats.
pub const SESSION_SETTINGS: &str =
    "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET extra_float_digits = 1";

/// Sqoop's delimited text for rows of `columns`.
pub struct SqoopText<'a> {
    columns: &'a [Column],
    field: Vec<u8>,
    line: Vec<u8>,
    null_string: Vec<u8>,
    null_non_string: Vec<u8>,
}

impl<'a> SqoopText<'a> {
    pub fn new(job: &ImportJob, columns: &'a [Column]) -> SqoopText<'a> {
        let null = |value: &Option<String>| value.as_deref().unwrap_or("null").as_bytes().to_vec();
        SqoopText {
            columns,
            field: job.fields_terminated_by.to_string().into_bytes(),
            line: job.lines_terminated_by.to_string().into_bytes(),
            null_string: null(&job.null_string),
            null_non_string: null(&job.null_non_string),
        }
    }

    pub fn write_row(&self, row: &CopyRow<'_>, out: &mut Vec<u8>) -> Result<()> {
        row.expect_fields(self.columns.len())?;
        for (index, column) in self.columns.iter().enumerate() {
            if index > 0 {
                out.extend_from_slice(&self.field);
            }
            match row.field(index)? {
                None if column.kind.is_string() => out.extend_from_slice(&self.null_string),
                None => out.extend_from_slice(&self.null_non_string),
                Some(value) => java_text(column.kind, value, out),
            }
        }
        out.extend_from_slice(&self.line);
        Ok(())
    }
}

/// What Java's `toString` gives for the JDBC value PostgreSQL's text `value` stands for.
fn java_text(kind: ColumnKind, value: &str, out: &mut Vec<u8>) {
    match kind {
        ColumnKind::Boolean => out.extend_from_slice(if value == "t" { b"true" } else { b"false" }),
        ColumnKind::Float32 => match value.parse::<f32>() {
            Ok(v) => java_floating(f64::from(v), &format!("{v:e}"), out),
            Err(_) => out.extend_from_slice(value.as_bytes()),
        },
        ColumnKind::Float64 => match value.parse::<f64>() {
            Ok(v) => java_floating(v, &format!("{v:e}"), out),
            Err(_) => out.extend_from_slice(value.as_bytes()),
        },
        ColumnKind::Timestamp | ColumnKind::TimestampTz => {
            let local = value.strip_suffix("+00").unwrap_or(value);
            out.extend_from_slice(local.as_bytes());
            if !local.contains('.') {
                out.extend_from_slice(b".0");
            }
        }
        ColumnKind::Time => {
            let time = value.split(['.', '+', '-']).next().unwrap_or(value);
            out.extend_from_slice(time.as_bytes());
        }
        ColumnKind::Bytes => {
            let hex = value.strip_prefix("\\x").unwrap_or(value).as_bytes();
            for (i, pair) in hex.chunks(2).enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                out.extend_from_slice(pair);
            }
        }
        _ => out.extend_from_slice(value.as_bytes()),
    }
}

/// Java's `Double.toString` / `Float.toString`: plain between 10⁻³ and 10⁷ with at least one
/// decimal, else `d.dddE±n`; `shortest` is Rust's `{:e}` of the value (its shortest digits).
fn java_floating(value: f64, shortest: &str, out: &mut Vec<u8>) {
    if value.is_nan() {
        return out.extend_from_slice(b"NaN");
    }
    if value.is_infinite() {
        return out.extend_from_slice(if value > 0.0 { b"Infinity" } else { b"-Infinity" });
    }
    let (mantissa, exponent) = shortest.split_once('e').unwrap_or((shortest, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if negative {
        out.push(b'-');
    }
    let magnitude = value.abs();
    let text = if magnitude == 0.0 {
        "0.0".to_string()
    } else if (1e-3..1e7).contains(&magnitude) {
        if exponent >= 0 {
            let point = exponent as usize + 1;
            let padded = format!("{digits:0<point$}");
            let (whole, fraction) = padded.split_at(point);
            format!("{whole}.{}", if fraction.is_empty() { "0" } else { fraction })
        } else {
            format!("0.{}{digits}", "0".repeat((-exponent - 1) as usize))
        }
    } else {
        let (first, rest) = digits.split_at(1);
        format!("{first}.{}E{exponent}", if rest.is_empty() { "0" } else { rest })
    };
    out.extend_from_slice(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn double(v: f64) -> String {
        let mut out = Vec::new();
        java_floating(v, &format!("{v:e}"), &mut out);
        String::from_utf8(out).unwrap()
    }

    fn float(v: f32) -> String {
        let mut out = Vec::new();
        java_floating(f64::from(v), &format!("{v:e}"), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn doubles_read_as_javas_double_to_string() {
        assert_eq!(double(75000.0), "75000.0");
        assert_eq!(double(0.5), "0.5");
        assert_eq!(double(0.001), "0.001");
        assert_eq!(double(0.0001), "1.0E-4");
        assert_eq!(double(1e7), "1.0E7");
        assert_eq!(double(12345678.9), "1.23456789E7");
        assert_eq!(double(-2.5), "-2.5");
        assert_eq!(double(0.0), "0.0");
        assert_eq!(double(-0.0), "-0.0");
        assert_eq!(double(1796167415.3241541), "1.7961674153241541E9");
        assert_eq!(double(f64::NAN), "NaN");
        assert_eq!(double(f64::NEG_INFINITY), "-Infinity");
        assert_eq!(float(0.1), "0.1");
        assert_eq!(float(3.4028235e38), "3.4028235E38");
    }

    fn sqoop_text(value: &str, kind: ColumnKind) -> String {
        let mut out = Vec::new();
        java_text(kind, value, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn values_read_as_jdbcs_java_types_print_them() {
        assert_eq!(sqoop_text("t", ColumnKind::Boolean), "true");
        assert_eq!(sqoop_text("f", ColumnKind::Boolean), "false");
        assert_eq!(sqoop_text("2024-01-02 03:04:05", ColumnKind::Timestamp), "2024-01-02 03:04:05.0");
        assert_eq!(sqoop_text("2024-01-02 03:04:05.25", ColumnKind::Timestamp), "2024-01-02 03:04:05.25");
        assert_eq!(sqoop_text("2024-01-02 03:04:05+00", ColumnKind::TimestampTz), "2024-01-02 03:04:05.0");
        assert_eq!(sqoop_text("03:04:05.123", ColumnKind::Time), "03:04:05");
        assert_eq!(sqoop_text("\\x0a1bff", ColumnKind::Bytes), "0a 1b ff");
        assert_eq!(sqoop_text("1.50", ColumnKind::Numeric), "1.50");
        assert_eq!(sqoop_text("a,b", ColumnKind::Text), "a,b");
    }

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

    #[test]
    fn delimiters_are_read_as_sqoop_reads_them() {
        assert_eq!(parse_delimiter(",").unwrap(), ',');
        assert_eq!(parse_delimiter("\\t").unwrap(), '\t');
        assert_eq!(parse_delimiter("\\001").unwrap(), '\u{1}');
        assert_eq!(parse_delimiter("\\0x10").unwrap(), '\u{10}');
        assert_eq!(parse_delimiter("\\0").unwrap(), '\0');
        assert_eq!(parse_delimiter("\\").unwrap(), '\\');
        assert!(parse_delimiter("\\q").is_err());
        assert!(parse_delimiter("").is_err());
        assert_eq!(unescape_argument("\\\\N"), "\\N");
    }

    #[test]
    fn direct_output_takes_sqoops_line_terminator() {
        let mut same = Vec::new();
        assert_eq!(DirectLines::new('\n').push(b"1,a\n2,b\n", &mut same), 2);
        assert_eq!(same, b"1,a\n2,b\n");
        let mut other = Vec::new();
        DirectLines::new('|').push(b"1,a\n2,b\n", &mut other);
        assert_eq!(other, b"1,a|2,b|");
    }
}
