//! `CREATE STREAM`, `CREATE STREAM … AS SELECT` and `DROP STREAM`.

use std::fmt;

use sqlparser::tokenizer::Token;

use super::{Cursor, Statement, display_ident, query};
use crate::{
    catalog::types::SqlType,
    error::{Result, SluiceError},
};

/// A column of a declared stream.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ColumnDef {
    pub name: String,
    pub data_type: SqlType,
    /// Read from the record's key rather than its value.
    pub key: bool,
}

impl fmt::Display for ColumnDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", display_ident(&self.name), self.data_type)?;
        if self.key {
            write!(f, " KEY")?;
        }
        Ok(())
    }
}

/// A `WITH (...)` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PropertyValue {
    String(String),
    Number(String),
    Boolean(bool),
}

impl PropertyValue {
    /// The value as text, whatever its literal kind.
    pub fn as_text(&self) -> String {
        match self {
            PropertyValue::String(s) | PropertyValue::Number(s) => s.clone(),
            PropertyValue::Boolean(b) => b.to_string(),
        }
    }
}

impl fmt::Display for PropertyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PropertyValue::String(s) => write!(f, "'{}'", s.replace('\'', "''")),
            PropertyValue::Number(n) => write!(f, "{n}"),
            PropertyValue::Boolean(b) => write!(f, "{}", if *b { "TRUE" } else { "FALSE" }),
        }
    }
}

/// `WITH (KEY = value, ...)`, in the order written. Unquoted keys are upper-cased.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Properties(pub Vec<(String, PropertyValue)>);

impl Properties {
    pub fn get(&self, key: &str) -> Option<&PropertyValue> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(super) fn parse(cursor: &mut Cursor) -> Result<Properties> {
        cursor.expect(&Token::LParen, "'(' to open the WITH properties")?;
        let mut properties = Vec::new();
        loop {
            let key = match cursor.peek().map(|t| t.token.clone()) {
                Some(Token::SingleQuotedString(s)) => {
                    cursor.advance();
                    s
                }
                _ => cursor.identifier("a property name such as KAFKA_TOPIC")?,
            };
            cursor.expect(&Token::Eq, &format!("'=' after the property {key}"))?;
            let value = match cursor.peek().map(|t| t.token.clone()) {
                Some(Token::SingleQuotedString(s)) => PropertyValue::String(s),
                Some(Token::Number(n, _)) => PropertyValue::Number(n),
                Some(Token::Minus) => {
                    cursor.advance();
                    match cursor.peek().map(|t| t.token.clone()) {
                        Some(Token::Number(n, _)) => PropertyValue::Number(format!("-{n}")),
                        _ => return Err(cursor.error("a number after '-'")),
                    }
                }
                _ if cursor.peek_word_is("TRUE") => PropertyValue::Boolean(true),
                _ if cursor.peek_word_is("FALSE") => PropertyValue::Boolean(false),
                _ => {
                    return Err(cursor.error(&format!(
                        "a quoted string, number or boolean as the value of {key}"
                    )));
                }
            };
            cursor.advance();
            properties.push((key, value));
            if !cursor.eat(&Token::Comma) {
                break;
            }
        }
        cursor.expect(&Token::RParen, "',' or ')' after a property")?;
        Ok(Properties(properties))
    }
}

impl fmt::Display for Properties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items: Vec<String> = self
            .0
            .iter()
            .map(|(k, v)| {
                let bare = k.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
                if !bare {
                    format!("'{}'={v}", k.replace('\'', "''"))
                } else {
                    format!("{k}={v}")
                }
            })
            .collect();
        write!(f, "WITH ({})", items.join(", "))
    }
}

/// `CREATE [OR REPLACE] STREAM [IF NOT EXISTS] `, the start both CREATE STREAM forms share.
fn write_create_stream(f: &mut fmt::Formatter<'_>, or_replace: bool, if_not_exists: bool) -> fmt::Result {
    write!(f, "CREATE ")?;
    if or_replace {
        write!(f, "OR REPLACE ")?;
    }
    write!(f, "STREAM ")?;
    if if_not_exists {
        write!(f, "IF NOT EXISTS ")?;
    }
    Ok(())
}

/// Declares a stream over an existing or new topic.
///
/// ```text
/// CREATE [OR REPLACE] [SOURCE] STREAM [IF NOT EXISTS] name (column type [KEY], ...)
///   WITH (KAFKA_TOPIC='topic', VALUE_FORMAT='JSON', ...);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct CreateStream {
    pub or_replace: bool,
    pub if_not_exists: bool,
    pub name: String,
    pub columns: Vec<ColumnDef>,
    pub properties: Properties,
}

impl fmt::Display for CreateStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_create_stream(f, self.or_replace, self.if_not_exists)?;
        let columns: Vec<String> = self.columns.iter().map(ToString::to_string).collect();
        write!(
            f,
            "{} ({}) {}",
            display_ident(&self.name),
            columns.join(", "),
            self.properties
        )
    }
}

/// A persistent query that creates its sink stream.
///
/// ```text
/// CREATE [OR REPLACE] STREAM [IF NOT EXISTS] name [WITH (...)] AS SELECT ... [EMIT CHANGES];
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct CreateStreamAsSelect {
    pub or_replace: bool,
    pub if_not_exists: bool,
    pub name: String,
    pub properties: Properties,
    pub select: query::Select,
}

impl fmt::Display for CreateStreamAsSelect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_create_stream(f, self.or_replace, self.if_not_exists)?;
        write!(f, "{} ", display_ident(&self.name))?;
        if !self.properties.is_empty() {
            write!(f, "{} ", self.properties)?;
        }
        write!(f, "AS {}", self.select)
    }
}

/// Removes a stream, and its topic with `DELETE TOPIC`.
///
/// ```text
/// DROP STREAM [IF EXISTS] name [DELETE TOPIC];
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropStream {
    pub if_exists: bool,
    pub name: String,
    pub delete_topic: bool,
}

impl fmt::Display for DropStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DROP STREAM ")?;
        if self.if_exists {
            write!(f, "IF EXISTS ")?;
        }
        write!(f, "{}", display_ident(&self.name))?;
        if self.delete_topic {
            write!(f, " DELETE TOPIC")?;
        }
        Ok(())
    }
}

pub(super) fn parse_create(cursor: &mut Cursor) -> Result<Statement> {
    cursor.expect_word("CREATE")?;
    let connector_ahead = cursor.peek_nth(1).is_some_and(|t| {
        matches!(&t.token, sqlparser::tokenizer::Token::Word(w) if w.value.eq_ignore_ascii_case("CONNECTOR"))
    });
    if cursor.peek_word_is("SINK") || (cursor.peek_word_is("SOURCE") && connector_ahead) {
        return super::connector::parse_create_connector(cursor);
    }
    let or_replace = cursor.eat_words(&["OR", "REPLACE"]);
    cursor.eat_word("SOURCE");
    if cursor.peek_word_is("TABLE") {
        return Err(SluiceError::NotImplemented(
            "tables (CREATE TABLE); Sluice has streams so far".into(),
        ));
    }
    if cursor.peek_word_is("TYPE") {
        return Err(SluiceError::NotImplemented("custom types (CREATE TYPE)".into()));
    }
    if !cursor.eat_word("STREAM") {
        return Err(cursor.error("STREAM after CREATE"));
    }
    let if_not_exists = cursor.eat_words(&["IF", "NOT", "EXISTS"]);
    let name = cursor.identifier("the stream's name")?;
    if cursor.peek().is_some_and(|t| t.token == Token::LParen) {
        let columns = parse_columns(cursor)?;
        if !cursor.eat_word("WITH") {
            return Err(cursor.error("WITH (KAFKA_TOPIC=..., VALUE_FORMAT=...) after the columns"));
        }
        let properties = Properties::parse(cursor)?;
        return Ok(Statement::CreateStream(CreateStream {
            or_replace,
            if_not_exists,
            name,
            columns,
            properties,
        }));
    }
    let properties = if cursor.eat_word("WITH") {
        Properties::parse(cursor)?
    } else {
        Properties::default()
    };
    if !cursor.eat_word("AS") {
        return Err(cursor.error("a column list in parentheses, or AS SELECT"));
    }
    let select = query::parse_select(cursor)?;
    Ok(Statement::CreateStreamAsSelect(CreateStreamAsSelect {
        or_replace,
        if_not_exists,
        name,
        properties,
        select,
    }))
}

fn parse_columns(cursor: &mut Cursor) -> Result<Vec<ColumnDef>> {
    cursor.expect(&Token::LParen, "'('")?;
    let mut columns = Vec::new();
    loop {
        let name = cursor.identifier("a column name")?;
        let data_type = parse_type(cursor)?;
        let key = cursor.eat_word("KEY") || cursor.eat_words(&["PRIMARY", "KEY"]);
        columns.push(ColumnDef {
            name,
            data_type,
            key,
        });
        if !cursor.eat(&Token::Comma) {
            break;
        }
    }
    cursor.expect(&Token::RParen, "',' or ')' after a column")?;
    Ok(columns)
}

fn parse_type(cursor: &mut Cursor) -> Result<SqlType> {
    const EXPECTED: &str = "a column type (STRING, INTEGER, BIGINT, DOUBLE, BOOLEAN, DECIMAL, TIMESTAMP, BYTES, ARRAY or MAP)";
    let Some(word) = cursor.peek_word() else {
        return Err(cursor.error(EXPECTED));
    };
    if let Some(simple) = SqlType::from_name(&word) {
        cursor.advance();
        return Ok(simple);
    }
    match word.as_str() {
        "DECIMAL" => {
            cursor.advance();
            cursor.expect(&Token::LParen, "'(' after DECIMAL")?;
            let precision = cursor.number("the decimal precision")?;
            cursor.expect(&Token::Comma, "',' after the precision")?;
            let scale = cursor.number("the decimal scale")?;
            cursor.expect(&Token::RParen, "')'")?;
            if precision == 0 || precision > 38 || scale > precision {
                return Err(SluiceError::Plan(format!(
                    "DECIMAL({precision}, {scale}) is out of range: precision 1 to 38, scale at most the precision"
                )));
            }
            Ok(SqlType::Decimal {
                precision: precision as u8,
                scale: scale as i8,
            })
        }
        "ARRAY" => {
            cursor.advance();
            cursor.expect(&Token::Lt, "'<' after ARRAY")?;
            let item = parse_type(cursor)?;
            cursor.expect(&Token::Gt, "'>' to close ARRAY<...>")?;
            Ok(SqlType::Array(Box::new(item)))
        }
        "MAP" => {
            cursor.advance();
            cursor.expect(&Token::Lt, "'<' after MAP")?;
            let key = parse_type(cursor)?;
            if key != SqlType::String {
                return Err(SluiceError::Plan("MAP keys must be STRING".into()));
            }
            cursor.expect(&Token::Comma, "',' between the MAP key and value types")?;
            let value = parse_type(cursor)?;
            cursor.expect(&Token::Gt, "'>' to close MAP<...>")?;
            Ok(SqlType::Map(Box::new(value)))
        }
        _ => Err(cursor.error(EXPECTED)),
    }
}

pub(super) fn parse_drop(cursor: &mut Cursor) -> Result<Statement> {
    cursor.expect_word("DROP")?;
    if cursor.peek_word_is("TABLE") {
        return Err(SluiceError::NotImplemented("tables (DROP TABLE)".into()));
    }
    if cursor.peek_word_is("TYPE") {
        return Err(SluiceError::NotImplemented("custom types (DROP TYPE)".into()));
    }
    if cursor.peek_word_is("CONNECTOR") {
        return super::connector::parse_drop_connector(cursor);
    }
    cursor.expect_word("STREAM")?;
    let if_exists = cursor.eat_words(&["IF", "EXISTS"]);
    let name = cursor.identifier("the name of the stream to drop")?;
    let delete_topic = cursor.eat_words(&["DELETE", "TOPIC"]);
    Ok(Statement::DropStream(DropStream {
        if_exists,
        name,
        delete_topic,
    }))
}
