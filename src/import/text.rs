//! The text an import writes: PostgreSQL's COPY text read row by row, and re-written as Sqoop's
//! delimited text (Java's `toString` of each JDBC value, `null` for NULL, no quoting), or the
//! CSV `--direct` passes through.

use super::ImportJob;
use crate::{
    connectors::postgres::{Column, ColumnKind, CopyRow},
    error::{Result, SluiceError},
    java_number::java_floating,
};

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
