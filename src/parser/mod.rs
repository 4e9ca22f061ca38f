//! `KsqlParser`: ksqlDB's dialect over sqlparser, with its own statements and plain-worded errors.
//!
//! Statements sqlparser does not know (`CREATE STREAM`, `EMIT CHANGES`, `PRINT`, `TERMINATE`,
//! `SHOW STREAMS`, …) are recognised here at the token level; the `SELECT` inside them and every
//! expression are handed to sqlparser. Words that are not sqlparser keywords are matched by value.

mod admin;
mod connector;
mod cursor;
mod query;
mod stream;

use std::fmt;

use sqlparser::{
    dialect::GenericDialect,
    tokenizer::{Token, Tokenizer},
};

pub use admin::{Describe, Print, SetProperty, Show, ShowKind, Terminate, UnsetProperty};
pub use connector::{ConnectorKind, CreateConnector, DescribeConnector, DropConnector};
pub use cursor::Cursor;
pub use query::{InsertSelect, InsertValues, Select};
pub use stream::{ColumnDef, CreateStream, CreateStreamAsSelect, DropStream, Properties, PropertyValue};

use crate::error::{Location, ParseError, Result, SluiceError};

/// One statement of the dialect.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    CreateStream(CreateStream),
    CreateStreamAsSelect(CreateStreamAsSelect),
    InsertSelect(InsertSelect),
    InsertValues(InsertValues),
    Select(Select),
    Show(Show),
    Describe(Describe),
    DropStream(DropStream),
    Terminate(Terminate),
    Print(Print),
    Set(SetProperty),
    Unset(UnsetProperty),
    CreateConnector(CreateConnector),
    DropConnector(DropConnector),
    DescribeConnector(DescribeConnector),
}

impl fmt::Display for Statement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Statement::CreateStream(s) => s.fmt(f),
            Statement::CreateStreamAsSelect(s) => s.fmt(f),
            Statement::InsertSelect(s) => s.fmt(f),
            Statement::InsertValues(s) => s.fmt(f),
            Statement::Select(s) => s.fmt(f),
            Statement::Show(s) => s.fmt(f),
            Statement::Describe(s) => s.fmt(f),
            Statement::DropStream(s) => s.fmt(f),
            Statement::Terminate(s) => s.fmt(f),
            Statement::Print(s) => s.fmt(f),
            Statement::Set(s) => s.fmt(f),
            Statement::Unset(s) => s.fmt(f),
            Statement::CreateConnector(s) => s.fmt(f),
            Statement::DropConnector(s) => s.fmt(f),
            Statement::DescribeConnector(s) => s.fmt(f),
        }
    }
}

/// A statement with the exact text it was parsed from, `;` included.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedStatement {
    pub statement: Statement,
    pub text: String,
    pub location: Location,
}

/// Parses ksqlDB's dialect into [`Statement`]s.
pub struct KsqlParser;

impl KsqlParser {
    /// Parses every statement of `sql`; each but the last must end with `;`.
    pub fn parse(sql: &str) -> Result<Vec<ParsedStatement>> {
        let dialect = GenericDialect {};
        let tokens = Tokenizer::new(&dialect, sql)
            .with_unescape(true)
            .tokenize_with_location()
            .map_err(|e| {
                SluiceError::Parse(ParseError {
                    location: Location {
                        line: e.location.line,
                        column: e.location.column,
                    },
                    found: "text that is not a SQL token".into(),
                    expected: e.message.to_lowercase(),
                })
            })?;
        let mut cursor = Cursor::new(tokens);
        let mut statements = Vec::new();
        loop {
            while cursor.eat(&Token::SemiColon) {}
            if cursor.at_end() {
                break;
            }
            let start = cursor.location();
            let statement = Self::parse_statement(&mut cursor)?;
            let end = cursor.end_location();
            if !cursor.eat(&Token::SemiColon) && !cursor.at_end() {
                return Err(cursor.error("';' to end the statement"));
            }
            let text_end = if cursor.previous_is(&Token::SemiColon) {
                cursor.end_location()
            } else {
                end
            };
            statements.push(ParsedStatement {
                statement,
                text: slice(sql, start, text_end).to_string(),
                location: start,
            });
        }
        Ok(statements)
    }

    /// Parses exactly one statement.
    pub fn parse_one(sql: &str) -> Result<ParsedStatement> {
        let mut all = Self::parse(sql)?;
        match all.len() {
            1 => Ok(all.remove(0)),
            0 => Err(SluiceError::Parse(ParseError {
                location: Location { line: 1, column: 1 },
                found: "no statement".into(),
                expected: "a statement".into(),
            })),
            _ => Err(SluiceError::Plan(format!(
                "expected one statement, found {}",
                all.len()
            ))),
        }
    }

    fn parse_statement(cursor: &mut Cursor) -> Result<Statement> {
        let word = cursor.peek_word().unwrap_or_default();
        match word.as_str() {
            "CREATE" => stream::parse_create(cursor),
            "INSERT" => query::parse_insert(cursor),
            "SELECT" => Ok(Statement::Select(query::parse_select(cursor)?)),
            "SHOW" | "LIST" => admin::parse_show(cursor),
            "DESCRIBE" => admin::parse_describe(cursor),
            "DROP" => stream::parse_drop(cursor),
            "TERMINATE" => admin::parse_terminate(cursor),
            "PRINT" => admin::parse_print(cursor),
            "SET" => admin::parse_set(cursor),
            "UNSET" => admin::parse_unset(cursor),
            _ => Err(cursor.error(
                "a statement such as CREATE, SELECT, INSERT, SHOW, DESCRIBE, DROP, TERMINATE, PRINT or SET",
            )),
        }
    }
}

/// The text between two locations of `sql` (end exclusive).
fn slice(sql: &str, start: Location, end: Location) -> &str {
    let offset = |at: Location| -> usize {
        let mut line_start = 0;
        for (n, line) in sql.split_inclusive('\n').enumerate() {
            if n as u64 + 1 == at.line {
                return line_start
                    + line
                        .char_indices()
                        .nth(at.column.saturating_sub(1) as usize)
                        .map_or(line.len(), |(i, _)| i);
            }
            line_start += line.len();
        }
        sql.len()
    };
    let (a, b) = (offset(start), offset(end));
    sql.get(a..b.max(a)).unwrap_or(sql).trim()
}

/// Normalises an identifier as ksqlDB does: upper-cased unless it was quoted.
pub fn normalize_ident(ident: &sqlparser::ast::Ident) -> String {
    if ident.quote_style.is_some() {
        ident.value.clone()
    } else {
        ident.value.to_ascii_uppercase()
    }
}

/// Quotes an identifier for output when it would not read back the same unquoted.
pub fn display_ident(name: &str) -> String {
    let plain = name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        && name.chars().next().is_some_and(|c| !c.is_ascii_digit());
    if plain {
        name.to_string()
    } else {
        format!("`{}`", name.replace('`', "``"))
    }
}
