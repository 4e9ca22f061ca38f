//! Metadata and lifecycle statements: `SHOW`/`LIST`, `DESCRIBE`, `TERMINATE`, `PAUSE`, `RESUME`,
//! `EXPLAIN`, `PRINT`, `SET`, `UNSET`, `DEFINE`, `UNDEFINE`.

use std::fmt;

use sqlparser::tokenizer::Token;

use super::{Cursor, Statement, display_ident};
use crate::error::{Result, SluiceError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShowKind {
    Streams,
    Tables,
    Topics,
    Queries,
    Properties,
    Connectors,
    Variables,
    Functions,
    Types,
}

/// Lists objects of one kind.
///
/// ```text
/// SHOW | LIST  STREAMS | TABLES | TOPICS | QUERIES | PROPERTIES | CONNECTORS | VARIABLES | FUNCTIONS  [EXTENDED];
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Show {
    pub kind: ShowKind,
    pub extended: bool,
}

impl fmt::Display for Show {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            ShowKind::Streams => "STREAMS",
            ShowKind::Tables => "TABLES",
            ShowKind::Topics => "TOPICS",
            ShowKind::Queries => "QUERIES",
            ShowKind::Properties => "PROPERTIES",
            ShowKind::Connectors => "CONNECTORS",
            ShowKind::Variables => "VARIABLES",
            ShowKind::Functions => "FUNCTIONS",
            ShowKind::Types => "TYPES",
        };
        write!(f, "SHOW {kind}{}", if self.extended { " EXTENDED" } else { "" })
    }
}

/// Describes one stream, or every stream (or table).
///
/// ```text
/// DESCRIBE name [EXTENDED];   DESCRIBE EXTENDED name;   DESCRIBE STREAMS | TABLES [EXTENDED];
/// DESCRIBE FUNCTION name;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Describe {
    pub target: DescribeTarget,
    pub extended: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DescribeTarget {
    Source(String),
    Streams,
    Tables,
    Function(String),
}

impl fmt::Display for Describe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            DescribeTarget::Source(name) => write!(f, "DESCRIBE {}", display_ident(name))?,
            DescribeTarget::Streams => write!(f, "DESCRIBE STREAMS")?,
            DescribeTarget::Tables => write!(f, "DESCRIBE TABLES")?,
            DescribeTarget::Function(name) => write!(f, "DESCRIBE FUNCTION {name}")?,
        }
        if self.extended {
            write!(f, " EXTENDED")?;
        }
        Ok(())
    }
}

/// What a query-control statement does to persistent queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryAction {
    /// Stops the query for good, forgetting its positions.
    Terminate,
    /// Stops processing, keeping positions and state, until `RESUME`.
    Pause,
    /// Carries on from where `PAUSE` stopped.
    Resume,
}

impl QueryAction {
    pub fn word(self) -> &'static str {
        match self {
            QueryAction::Terminate => "TERMINATE",
            QueryAction::Pause => "PAUSE",
            QueryAction::Resume => "RESUME",
        }
    }
}

/// The queries a query-control statement acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryTarget {
    Query(String),
    All,
}

/// Stops, pauses or resumes a persistent query, or all of them.
///
/// ```text
/// TERMINATE | PAUSE | RESUME  query_id | ALL;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryControl {
    pub action: QueryAction,
    pub target: QueryTarget,
}

impl fmt::Display for QueryControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            QueryTarget::Query(id) => write!(f, "{} {id}", self.action.word()),
            QueryTarget::All => write!(f, "{} ALL", self.action.word()),
        }
    }
}

/// Shows how a query runs: a running query's, by id, or the plan a statement would run.
///
/// ```text
/// EXPLAIN query_id;   EXPLAIN SELECT … | CREATE … AS SELECT … | INSERT INTO … SELECT …;
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Explain {
    Query(String),
    Statement(Box<Statement>),
}

impl fmt::Display for Explain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Explain::Query(id) => write!(f, "EXPLAIN {id}"),
            Explain::Statement(statement) => write!(f, "EXPLAIN {statement}"),
        }
    }
}

/// Shows a topic's records as they arrive.
///
/// ```text
/// PRINT topic [FROM BEGINNING] [INTERVAL n] [LIMIT n];
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Print {
    pub topic: String,
    /// A quoted name is matched exactly; an unquoted one ignoring case.
    pub quoted: bool,
    pub from_beginning: bool,
    pub interval: u64,
    pub limit: Option<u64>,
}

impl fmt::Display for Print {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.quoted {
            write!(f, "PRINT '{}'", self.topic)?;
        } else {
            write!(f, "PRINT {}", self.topic)?;
        }
        if self.from_beginning {
            write!(f, " FROM BEGINNING")?;
        }
        if self.interval > 1 {
            write!(f, " INTERVAL {}", self.interval)?;
        }
        if let Some(limit) = self.limit {
            write!(f, " LIMIT {limit}")?;
        }
        Ok(())
    }
}

/// Sets a property for the following statements of the request or session.
///
/// ```text
/// SET 'auto.offset.reset' = 'earliest';
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetProperty {
    pub name: String,
    pub value: String,
}

impl fmt::Display for SetProperty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SET '{}'='{}'", self.name, self.value)
    }
}

/// Clears a property set with `SET`.
///
/// ```text
/// UNSET 'auto.offset.reset';
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsetProperty {
    pub name: String,
}

impl fmt::Display for UnsetProperty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UNSET '{}'", self.name)
    }
}

/// Defines a variable that later statements use as `${name}`.
///
/// ```text
/// DEFINE name = 'value';
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefineVariable {
    pub name: String,
    pub value: String,
}

impl fmt::Display for DefineVariable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DEFINE {} = '{}'", self.name, self.value.replace('\'', "''"))
    }
}

/// Removes a variable defined with `DEFINE`.
///
/// ```text
/// UNDEFINE name;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndefineVariable {
    pub name: String,
}

impl fmt::Display for UndefineVariable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UNDEFINE {}", self.name)
    }
}

pub(super) fn parse_show(cursor: &mut Cursor) -> Result<Statement> {
    cursor.advance();
    let kind = match cursor.peek_word().as_deref() {
        Some("STREAMS") => ShowKind::Streams,
        Some("TABLES") => ShowKind::Tables,
        Some("TOPICS") => ShowKind::Topics,
        Some("QUERIES") => ShowKind::Queries,
        Some("PROPERTIES") => ShowKind::Properties,
        Some("CONNECTORS") => ShowKind::Connectors,
        Some("VARIABLES") => ShowKind::Variables,
        Some("FUNCTIONS") => ShowKind::Functions,
        Some("TYPES") => ShowKind::Types,
        _ => return Err(cursor.error("STREAMS, TABLES, TOPICS, QUERIES, PROPERTIES, CONNECTORS, VARIABLES, FUNCTIONS or TYPES")),
    };
    cursor.advance();
    let extended = cursor.eat_word("EXTENDED");
    Ok(Statement::Show(Show { kind, extended }))
}

pub(super) fn parse_describe(cursor: &mut Cursor) -> Result<Statement> {
    cursor.expect_word("DESCRIBE")?;
    if cursor.peek_word_is("CONNECTOR") && cursor.peek_nth(1).is_some_and(|t| t.token != Token::SemiColon) {
        return super::connector::parse_describe_connector(cursor);
    }
    let leading = cursor.peek_nth(1).is_some_and(|t| t.token != Token::SemiColon) && cursor.eat_word("EXTENDED");
    let target = if cursor.eat_word("STREAMS") {
        DescribeTarget::Streams
    } else if cursor.eat_word("TABLES") {
        DescribeTarget::Tables
    } else if cursor.peek_word_is("FUNCTION") && cursor.peek_nth(1).is_some_and(|t| t.token != Token::SemiColon) {
        cursor.advance();
        let name = cursor.identifier("the name of a function such as EXTRACTJSONFIELD")?;
        return Ok(Statement::Describe(Describe { target: DescribeTarget::Function(name), extended: false }));
    } else {
        DescribeTarget::Source(cursor.identifier("the name of a stream to describe")?)
    };
    let trailing = cursor.eat_word("EXTENDED");
    Ok(Statement::Describe(Describe {
        target,
        extended: leading || trailing,
    }))
}

pub(super) fn parse_define(cursor: &mut Cursor) -> Result<Statement> {
    cursor.expect_word("DEFINE")?;
    let name = variable_name(cursor)?;
    cursor.expect(&Token::Eq, "'=' after the variable's name")?;
    let value = cursor.string_literal("the variable's value in single quotes")?;
    Ok(Statement::Define(DefineVariable { name, value }))
}

pub(super) fn parse_undefine(cursor: &mut Cursor) -> Result<Statement> {
    cursor.expect_word("UNDEFINE")?;
    let name = variable_name(cursor)?;
    Ok(Statement::Undefine(UndefineVariable { name }))
}

/// A variable's name: a word, kept as written (`${name}` finds it ignoring case).
fn variable_name(cursor: &mut Cursor) -> Result<String> {
    match cursor.peek().map(|t| &t.token) {
        Some(Token::Word(word)) => {
            let name = word.value.clone();
            cursor.advance();
            Ok(name)
        }
        _ => Err(cursor.error("a variable name")),
    }
}

pub(super) fn parse_query_control(cursor: &mut Cursor) -> Result<Statement> {
    let action = if cursor.eat_word("TERMINATE") {
        QueryAction::Terminate
    } else if cursor.eat_word("PAUSE") {
        QueryAction::Pause
    } else {
        cursor.expect_word("RESUME")?;
        QueryAction::Resume
    };
    let target = if cursor.eat_word("ALL") {
        QueryTarget::All
    } else {
        QueryTarget::Query(cursor.identifier("a query id such as CSAS_SENSOR_ID_3_5, or ALL")?)
    };
    Ok(Statement::QueryControl(QueryControl { action, target }))
}

pub(super) fn parse_explain(cursor: &mut Cursor) -> Result<Statement> {
    cursor.expect_word("EXPLAIN")?;
    let next = cursor.peek_word().unwrap_or_default();
    if ["SELECT", "CREATE", "INSERT"].contains(&next.as_str()) {
        let statement = super::KsqlParser::parse_statement(cursor)?;
        return match statement {
            Statement::Select(_) | Statement::CreateAsSelect(_) | Statement::InsertSelect(_) => {
                Ok(Statement::Explain(Explain::Statement(Box::new(statement))))
            }
            other => Err(SluiceError::Plan(format!(
                "The provided statement does not run a ksql query: {other}"
            ))),
        };
    }
    let id = cursor.identifier("a query id, or a SELECT, CREATE … AS SELECT or INSERT INTO … SELECT statement")?;
    Ok(Statement::Explain(Explain::Query(id)))
}

pub(super) fn parse_print(cursor: &mut Cursor) -> Result<Statement> {
    cursor.expect_word("PRINT")?;
    let (topic, quoted) = match cursor.peek().map(|t| t.token.clone()) {
        Some(Token::SingleQuotedString(s)) => {
            cursor.advance();
            (s, true)
        }
        Some(Token::Word(w)) => {
            cursor.advance();
            (w.value.clone(), w.quote_style.is_some())
        }
        _ => return Err(cursor.error("the name of a topic to print")),
    };
    let from_beginning = cursor.eat_words(&["FROM", "BEGINNING"]);
    let mut interval = 1;
    if cursor.eat_word("INTERVAL") || cursor.eat_word("SAMPLE") {
        interval = cursor.number("a whole number after INTERVAL")?.max(1);
    }
    let limit = if cursor.eat_word("LIMIT") {
        Some(cursor.number("a whole number after LIMIT")?)
    } else {
        None
    };
    Ok(Statement::Print(Print {
        topic,
        quoted,
        from_beginning,
        interval,
        limit,
    }))
}

pub(super) fn parse_set(cursor: &mut Cursor) -> Result<Statement> {
    cursor.expect_word("SET")?;
    let name = cursor.string_literal("a quoted property name, as in SET 'auto.offset.reset'='earliest'")?;
    cursor.expect(&Token::Eq, "'=' after the property name")?;
    let value = cursor.string_literal("a quoted property value")?;
    Ok(Statement::Set(SetProperty { name, value }))
}

pub(super) fn parse_unset(cursor: &mut Cursor) -> Result<Statement> {
    cursor.expect_word("UNSET")?;
    let name = cursor.string_literal("a quoted property name, as in UNSET 'auto.offset.reset'")?;
    Ok(Statement::Unset(UnsetProperty { name }))
}
