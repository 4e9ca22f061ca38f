//! `CREATE STREAM|TABLE`, `CREATE STREAM|TABLE … AS SELECT` and `DROP STREAM|TABLE`.

use std::fmt;

use sqlparser::tokenizer::Token;

use super::{Cursor, Statement, display_ident, query};
use crate::{
    catalog::types::SqlType,
    error::{Result, SluiceError},
};

/// Whether a statement is about a stream (every record an event) or a table (the latest value
/// per key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum SourceKind {
    Stream,
    Table,
}

impl SourceKind {
    /// The keyword: `STREAM` or `TABLE`.
    pub fn keyword(self) -> &'static str {
        match self {
            SourceKind::Stream => "STREAM",
            SourceKind::Table => "TABLE",
        }
    }

    /// The word in ksqlDB's messages: `stream` or `table`.
    pub fn word(self) -> &'static str {
        match self {
            SourceKind::Stream => "stream",
            SourceKind::Table => "table",
        }
    }

    /// How a key column is declared: `KEY` in a stream, `PRIMARY KEY` in a table.
    pub fn key_words(self) -> &'static str {
        match self {
            SourceKind::Stream => "KEY",
            SourceKind::Table => "PRIMARY KEY",
        }
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.keyword())
    }
}

/// A column of a declared stream or table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ColumnDef {
    pub name: String,
    pub data_type: SqlType,
    /// Read from the record's key rather than its value.
    pub key: bool,
    /// Read from the record's headers rather than its value.
    #[serde(default)]
    pub header: Option<HeaderColumn>,
}

/// Which of a record's headers a column reads.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum HeaderColumn {
    /// `HEADERS`: every header, in order, as `ARRAY<STRUCT<KEY STRING, VALUE BYTES>>`.
    All,
    /// `HEADER('key')`: the value of the last header with this key, as BYTES.
    Key(String),
}

impl ColumnDef {
    /// A column read from the record's value.
    pub fn value(name: impl Into<String>, data_type: SqlType) -> Self {
        Self { name: name.into(), data_type, key: false, header: None }
    }

    /// A column read from the record's key.
    pub fn key(name: impl Into<String>, data_type: SqlType) -> Self {
        Self { name: name.into(), data_type, key: true, header: None }
    }

    /// Read from the record's value: neither its key nor its headers.
    pub fn in_value(&self) -> bool {
        !self.key && self.header.is_none()
    }
}

impl fmt::Display for ColumnDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", display_ident(&self.name), self.data_type)?;
        if self.key {
            write!(f, " KEY")?;
        }
        match &self.header {
            Some(HeaderColumn::All) => write!(f, " HEADERS")?,
            Some(HeaderColumn::Key(key)) => write!(f, " HEADER('{}')", key.replace('\'', "''"))?,
            None => {}
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

/// `CREATE [OR REPLACE] [SOURCE] STREAM|TABLE [IF NOT EXISTS] `, the start every CREATE form
/// shares.
fn write_create(f: &mut fmt::Formatter<'_>, or_replace: bool, read_only: bool, kind: SourceKind, if_not_exists: bool) -> fmt::Result {
    write!(f, "CREATE ")?;
    if or_replace {
        write!(f, "OR REPLACE ")?;
    }
    if read_only {
        write!(f, "SOURCE ")?;
    }
    write!(f, "{kind} ")?;
    if if_not_exists {
        write!(f, "IF NOT EXISTS ")?;
    }
    Ok(())
}

/// Declares a stream or a table over an existing or new topic.
///
/// ```text
/// CREATE [OR REPLACE] [SOURCE] STREAM [IF NOT EXISTS] name (column type [KEY], ...)
///   WITH (KAFKA_TOPIC='topic', VALUE_FORMAT='JSON', ...);
/// CREATE [OR REPLACE] [SOURCE] TABLE [IF NOT EXISTS] name (column type [PRIMARY KEY], ...)
///   WITH (...);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct CreateSource {
    pub or_replace: bool,
    /// `SOURCE`: read-only, and (a table) materialized for pull queries.
    pub read_only: bool,
    pub kind: SourceKind,
    pub if_not_exists: bool,
    pub name: String,
    pub columns: Vec<ColumnDef>,
    pub properties: Properties,
}

impl fmt::Display for CreateSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_create(f, self.or_replace, self.read_only, self.kind, self.if_not_exists)?;
        let columns: Vec<String> = self
            .columns
            .iter()
            .map(|c| match (c.key, self.kind) {
                (true, SourceKind::Table) => format!("{} {} PRIMARY KEY", display_ident(&c.name), c.data_type),
                _ => c.to_string(),
            })
            .collect();
        match columns.is_empty() {
            true => write!(f, "{} {}", display_ident(&self.name), self.properties),
            false => write!(f, "{} ({}) {}", display_ident(&self.name), columns.join(", "), self.properties),
        }
    }
}

/// A persistent query that creates its sink stream or table.
///
/// ```text
/// CREATE [OR REPLACE] STREAM|TABLE [IF NOT EXISTS] name [WITH (...)] AS SELECT ... [EMIT CHANGES];
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct CreateAsSelect {
    pub or_replace: bool,
    pub kind: SourceKind,
    pub if_not_exists: bool,
    pub name: String,
    pub properties: Properties,
    pub select: query::Select,
}

impl fmt::Display for CreateAsSelect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_create(f, self.or_replace, false, self.kind, self.if_not_exists)?;
        write!(f, "{} ", display_ident(&self.name))?;
        if !self.properties.is_empty() {
            write!(f, "{} ", self.properties)?;
        }
        write!(f, "AS {}", self.select)
    }
}

/// Removes a stream or table, and its topic with `DELETE TOPIC`.
///
/// ```text
/// DROP STREAM|TABLE [IF EXISTS] name [DELETE TOPIC];
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropSource {
    pub kind: SourceKind,
    pub if_exists: bool,
    pub name: String,
    pub delete_topic: bool,
}

impl fmt::Display for DropSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DROP {} ", self.kind)?;
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
    if cursor.peek_word_is("TYPE") {
        return super::custom_type::parse_create_type(cursor);
    }
    let or_replace = cursor.eat_words(&["OR", "REPLACE"]);
    let read_only = cursor.eat_word("SOURCE");
    let kind = parse_kind(cursor, "STREAM or TABLE after CREATE")?;
    let if_not_exists = cursor.eat_words(&["IF", "NOT", "EXISTS"]);
    let name = cursor.identifier(&format!("the {}'s name", kind.word()))?;
    if cursor.peek().is_some_and(|t| t.token == Token::LParen) {
        let columns = parse_columns(cursor, kind)?;
        if !cursor.eat_word("WITH") {
            return Err(cursor.error("WITH (KAFKA_TOPIC=..., VALUE_FORMAT=...) after the columns"));
        }
        let properties = Properties::parse(cursor)?;
        return Ok(Statement::CreateSource(CreateSource {
            or_replace,
            read_only,
            kind,
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
    // A declaration without columns parses, as in ksqlDB, to be refused for having none.
    if !properties.0.is_empty() && cursor.peek().is_none_or(|t| t.token == Token::SemiColon) {
        return Ok(Statement::CreateSource(CreateSource { or_replace, read_only, kind, if_not_exists, name, columns: Vec::new(), properties }));
    }
    if !cursor.eat_word("AS") {
        return Err(cursor.error("a column list in parentheses, or AS SELECT"));
    }
    if read_only {
        return Err(SluiceError::Plan(format!(
            "CREATE SOURCE {} declares a {} over a topic: it takes a column list, not AS SELECT",
            kind,
            kind.word()
        )));
    }
    let select = query::parse_select(cursor)?;
    Ok(Statement::CreateAsSelect(CreateAsSelect {
        or_replace,
        kind,
        if_not_exists,
        name,
        properties,
        select,
    }))
}

/// `STREAM` or `TABLE`; anything else is a syntax error saying `expected`.
pub(super) fn parse_kind(cursor: &mut Cursor, expected: &str) -> Result<SourceKind> {
    if cursor.eat_word("STREAM") {
        Ok(SourceKind::Stream)
    } else if cursor.eat_word("TABLE") {
        Ok(SourceKind::Table)
    } else {
        Err(cursor.error(expected))
    }
}

/// The column list; a stream's key columns say `KEY`, a table's `PRIMARY KEY`, and the other
/// word is refused with ksqlDB's message.
fn parse_columns(cursor: &mut Cursor, kind: SourceKind) -> Result<Vec<ColumnDef>> {
    cursor.expect(&Token::LParen, "'('")?;
    let mut columns = Vec::new();
    loop {
        let at = cursor.location();
        let name = cursor.identifier("a column name")?;
        let data_type = parse_type(cursor)?;
        let declared = if cursor.eat_word("KEY") {
            Some(SourceKind::Stream)
        } else if cursor.eat_words(&["PRIMARY", "KEY"]) {
            Some(SourceKind::Table)
        } else {
            None
        };
        if let Some(declared) = declared.filter(|d| *d != kind) {
            return Err(SluiceError::Plan(format!(
                "Line: {}, Col: {}: Column `{name}` is a '{}' column: please use '{}' for {}s.\nTables have PRIMARY KEYs, which are unique and NON NULL.\nStreams have KEYs, which have no uniqueness or NON NULL constraints.",
                at.line,
                at.column,
                declared.key_words(),
                kind.key_words(),
                kind.word()
            )));
        }
        let key = declared.is_some();
        let header = if key { None } else { parse_header(cursor, &data_type)? };
        columns.push(ColumnDef { name, data_type, key, header });
        if !cursor.eat(&Token::Comma) {
            break;
        }
    }
    cursor.expect(&Token::RParen, "',' or ')' after a column")?;
    Ok(columns)
}

/// `HEADERS` or `HEADER('key')` after a column's type, checked against it as ksqlDB checks it.
fn parse_header(cursor: &mut Cursor, data_type: &SqlType) -> Result<Option<HeaderColumn>> {
    let header = if cursor.eat_word("HEADERS") {
        let expected = SqlType::Array(Box::new(SqlType::Struct(vec![("KEY".into(), SqlType::String), ("VALUE".into(), SqlType::Bytes)])));
        if *data_type != expected {
            return Err(SluiceError::Plan(format!(
                "Invalid type for HEADERS column: expected ARRAY<STRUCT<`KEY` STRING, `VALUE` BYTES>>, got {data_type}"
            )));
        }
        HeaderColumn::All
    } else if cursor.eat_word("HEADER") {
        cursor.expect(&Token::LParen, "'(' after HEADER")?;
        let key = cursor.string_literal("the header's key in quotes")?;
        cursor.expect(&Token::RParen, "')' after the header's key")?;
        if *data_type != SqlType::Bytes {
            return Err(SluiceError::Plan(format!("Invalid type for HEADER('{key}') column: expected BYTES, got {data_type}")));
        }
        HeaderColumn::Key(key)
    } else {
        return Ok(None);
    };
    Ok(Some(header))
}

/// Words that are no type's name: those that may follow a column's type (where one is, the
/// type is missing), and NULL.
const NOT_TYPE_NAMES: [&str; 5] = ["KEY", "PRIMARY", "HEADERS", "HEADER", "NULL"];

/// A column type: a built-in one, or a name `CREATE TYPE` gave one.
pub(super) fn parse_type(cursor: &mut Cursor) -> Result<SqlType> {
    const EXPECTED: &str =
        "a column type (STRING, INTEGER, BIGINT, DOUBLE, BOOLEAN, DECIMAL, TIMESTAMP, DATE, TIME, BYTES, ARRAY, MAP, STRUCT or a type CREATE TYPE named)";
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
            cursor.close_angle("'>' to close ARRAY<...>")?;
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
            cursor.close_angle("'>' to close MAP<...>")?;
            Ok(SqlType::Map(Box::new(value)))
        }
        "STRUCT" => {
            cursor.advance();
            cursor.expect(&Token::Lt, "'<' after STRUCT")?;
            let mut fields: Vec<(String, SqlType)> = Vec::new();
            if cursor.close_angle("a field or '>'").is_err() {
                loop {
                    let name = cursor.identifier("a STRUCT field's name")?;
                    if fields.iter().any(|(existing, _)| *existing == name) {
                        return Err(SluiceError::Plan(format!("Duplicate field names found in STRUCT: '{name}'")));
                    }
                    let data_type = parse_type(cursor)?;
                    fields.push((name, data_type));
                    if !cursor.eat(&Token::Comma) {
                        break;
                    }
                }
                cursor.close_angle("',' or '>' to close STRUCT<...>")?;
            }
            Ok(SqlType::Struct(fields))
        }
        _ => {
            if NOT_TYPE_NAMES.contains(&word.as_str()) {
                return Err(cursor.error(EXPECTED));
            }
            let name = cursor.identifier(EXPECTED)?;
            cursor
                .types()
                .get(&name)
                .cloned()
                .ok_or_else(|| SluiceError::Plan(format!("Cannot resolve unknown type: {name}")))
        }
    }
}

pub(super) fn parse_drop(cursor: &mut Cursor) -> Result<Statement> {
    cursor.expect_word("DROP")?;
    if cursor.peek_word_is("TYPE") {
        return super::custom_type::parse_drop_type(cursor);
    }
    if cursor.peek_word_is("CONNECTOR") {
        return super::connector::parse_drop_connector(cursor);
    }
    let kind = parse_kind(cursor, "STREAM, TABLE or CONNECTOR after DROP")?;
    let if_exists = cursor.eat_words(&["IF", "EXISTS"]);
    let name = cursor.identifier(&format!("the name of the {} to drop", kind.word()))?;
    let delete_topic = cursor.eat_words(&["DELETE", "TOPIC"]);
    Ok(Statement::DropSource(DropSource {
        kind,
        if_exists,
        name,
        delete_topic,
    }))
}
