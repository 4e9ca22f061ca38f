//! Connector statements: `CREATE SOURCE|SINK CONNECTOR`, `DROP CONNECTOR`, `DESCRIBE CONNECTOR`.

use std::fmt;

use super::{Cursor, Properties, Statement, display_ident};
use crate::error::Result;

/// Whether a connector reads into Kafka or writes out of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectorKind {
    Source,
    Sink,
}

impl ConnectorKind {
    /// `SOURCE` or `SINK`, as ksqlDB writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectorKind::Source => "SOURCE",
            ConnectorKind::Sink => "SINK",
        }
    }
}

/// Creates a connector from Kafka Connect configuration keys.
///
/// ```text
/// CREATE SOURCE | SINK CONNECTOR [IF NOT EXISTS] name WITH ('connector.class' = '...', ...);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateConnector {
    pub kind: ConnectorKind,
    pub if_not_exists: bool,
    pub name: String,
    pub properties: Properties,
}

impl fmt::Display for CreateConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CREATE {} CONNECTOR ", self.kind.as_str())?;
        if self.if_not_exists {
            write!(f, "IF NOT EXISTS ")?;
        }
        write!(f, "{} {}", display_ident(&self.name), self.properties)
    }
}

/// Stops and removes a connector; what it already wrote stays.
///
/// ```text
/// DROP CONNECTOR [IF EXISTS] name;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropConnector {
    pub if_exists: bool,
    pub name: String,
}

impl fmt::Display for DropConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DROP CONNECTOR ")?;
        if self.if_exists {
            write!(f, "IF EXISTS ")?;
        }
        write!(f, "{}", display_ident(&self.name))
    }
}

/// Shows a connector's configuration, state and progress.
///
/// ```text
/// DESCRIBE CONNECTOR name;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeConnector {
    pub name: String,
}

impl fmt::Display for DescribeConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DESCRIBE CONNECTOR {}", display_ident(&self.name))
    }
}

/// After `CREATE`: `SOURCE|SINK CONNECTOR ...`.
pub(super) fn parse_create_connector(cursor: &mut Cursor) -> Result<Statement> {
    let kind = if cursor.eat_word("SINK") {
        ConnectorKind::Sink
    } else if cursor.eat_word("SOURCE") {
        ConnectorKind::Source
    } else {
        return Err(cursor.error("SINK or SOURCE"));
    };
    cursor.expect_word("CONNECTOR")?;
    let if_not_exists = cursor.eat_words(&["IF", "NOT", "EXISTS"]);
    let name = cursor.identifier("the connector's name")?;
    if !cursor.eat_word("WITH") {
        return Err(cursor.error("WITH ('connector.class'=..., ...) after the connector's name"));
    }
    let properties = Properties::parse(cursor)?;
    Ok(Statement::CreateConnector(CreateConnector {
        kind,
        if_not_exists,
        name,
        properties,
    }))
}

/// After `DROP`: `CONNECTOR [IF EXISTS] name`.
pub(super) fn parse_drop_connector(cursor: &mut Cursor) -> Result<Statement> {
    cursor.expect_word("CONNECTOR")?;
    let if_exists = cursor.eat_words(&["IF", "EXISTS"]);
    let name = cursor.identifier("the name of a connector to drop")?;
    Ok(Statement::DropConnector(DropConnector { if_exists, name }))
}

/// After `DESCRIBE`: `CONNECTOR name`.
pub(super) fn parse_describe_connector(cursor: &mut Cursor) -> Result<Statement> {
    cursor.expect_word("CONNECTOR")?;
    let name = cursor.identifier("the name of a connector to describe")?;
    Ok(Statement::DescribeConnector(DescribeConnector { name }))
}
