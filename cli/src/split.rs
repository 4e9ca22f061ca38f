//! Splits SQL text into statements at `;` outside quotes and comments, remembering where each
//! statement starts so errors can point into the file.

/// One statement and the 1-based line and column where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub text: String,
    pub line: usize,
    pub column: usize,
}

/// The complete statements of `sql`, and the incomplete rest (text after the last `;`).
pub fn split(sql: &str) -> (Vec<Piece>, String) {
    let mut pieces = Vec::new();
    let mut current = String::new();
    let mut start: Option<(usize, usize)> = None;
    let (mut line, mut column) = (1, 1);
    let mut chars = sql.chars().peekable();
    let mut quote: Option<char> = None;
    let mut line_comment = false;
    let mut block_comment = false;
    while let Some(c) = chars.next() {
        let here = (line, column);
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
        // A comment before a statement's first word is not part of it: the statement's text
        // starts where its line and column say.
        if line_comment {
            if start.is_some() {
                current.push(c);
            }
            if c == '\n' {
                line_comment = false;
            }
            continue;
        }
        if block_comment {
            if start.is_some() {
                current.push(c);
            }
            if c == '*' && chars.peek() == Some(&'/') {
                let end = chars.next().unwrap_or('/');
                if start.is_some() {
                    current.push(end);
                }
                column += 1;
                block_comment = false;
            }
            continue;
        }
        if let Some(q) = quote {
            current.push(c);
            if c == q {
                if chars.peek() == Some(&q) {
                    current.push(chars.next().unwrap_or(q));
                    column += 1;
                } else {
                    quote = None;
                }
            }
            continue;
        }
        match c {
            '\'' | '"' | '`' => {
                quote = Some(c);
                start.get_or_insert(here);
                current.push(c);
            }
            '-' if chars.peek() == Some(&'-') => {
                line_comment = true;
                if start.is_some() {
                    current.push(c);
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                block_comment = true;
                if start.is_some() {
                    current.push(c);
                }
            }
            ';' => {
                current.push(c);
                if let Some((line, column)) = start.take() {
                    pieces.push(Piece {
                        text: std::mem::take(&mut current).trim().to_string(),
                        line,
                        column,
                    });
                } else {
                    current.clear();
                }
            }
            c if c.is_whitespace() => {
                if start.is_some() {
                    current.push(c);
                }
            }
            c => {
                start.get_or_insert(here);
                current.push(c);
            }
        }
    }
    let rest = if start.is_some() { current.trim().to_string() } else { String::new() };
    (pieces, rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_end_at_semicolons_outside_quotes_and_comments() {
        let (pieces, rest) = split("SHOW STREAMS; -- a; comment\nSELECT ';' FROM S /* ; */ EMIT CHANGES;\nDESCRIBE");
        assert_eq!(pieces.len(), 2);
        assert_eq!(pieces[0].text, "SHOW STREAMS;");
        assert_eq!((pieces[0].line, pieces[0].column), (1, 1));
        assert_eq!(pieces[1].text, "SELECT ';' FROM S /* ; */ EMIT CHANGES;");
        assert_eq!((pieces[1].line, pieces[1].column), (2, 1));
        assert_eq!(rest, "DESCRIBE");
    }

    #[test]
    fn comments_before_a_statement_are_not_part_of_it() {
        let (pieces, _) = split("-- why\n/* and how */ SET 'auto.offset.reset' = 'earliest';");
        assert_eq!(pieces[0].text, "SET 'auto.offset.reset' = 'earliest';");
        assert_eq!((pieces[0].line, pieces[0].column), (2, 15));
    }

    #[test]
    fn a_statement_starts_at_its_first_word() {
        let (pieces, _) = split("\n\n  CREATE STREAM S\n  (A STRING) WITH (KAFKA_TOPIC='t');");
        assert_eq!((pieces[0].line, pieces[0].column), (3, 3));
    }
}
