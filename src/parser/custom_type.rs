//! `CREATE TYPE` and `DROP TYPE`: names for column types, which later statements' column types
//! may use in their place.

use std::fmt;

use super::{Cursor, Statement, display_ident, stream::parse_type};
use crate::{
    catalog::types::{CustomTypes, SqlType},
    error::Result,
};

/// ```text
/// CREATE TYPE [IF NOT EXISTS] name AS type;
/// ```
/// The type is kept as it resolves when the statement is made: the types it names are expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateType {
    pub if_not_exists: bool,
    pub name: String,
    pub data_type: SqlType,
}

impl fmt::Display for CreateType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CREATE TYPE ")?;
        if self.if_not_exists {
            write!(f, "IF NOT EXISTS ")?;
        }
        write!(f, "{} AS {}", display_ident(&self.name), self.data_type)
    }
}

/// ```text
/// DROP TYPE [IF EXISTS] name;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropType {
    pub if_exists: bool,
    pub name: String,
}

impl fmt::Display for DropType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DROP TYPE ")?;
        if self.if_exists {
            write!(f, "IF EXISTS ")?;
        }
        write!(f, "{}", display_ident(&self.name))
    }
}

/// `CREATE TYPE …`, its `CREATE` consumed.
pub(super) fn parse_create_type(cursor: &mut Cursor) -> Result<Statement> {
    cursor.expect_word("TYPE")?;
    let if_not_exists = cursor.eat_words(&["IF", "NOT", "EXISTS"]);
    let name = cursor.identifier("the type's name")?;
    cursor.expect_word("AS")?;
    let data_type = parse_type(cursor)?;
    Ok(Statement::CreateType(CreateType { if_not_exists, name, data_type }))
}

/// `DROP TYPE …`, its `DROP` consumed.
pub(super) fn parse_drop_type(cursor: &mut Cursor) -> Result<Statement> {
    cursor.expect_word("TYPE")?;
    let if_exists = cursor.eat_words(&["IF", "EXISTS"]);
    let name = cursor.identifier("the name of the type to drop")?;
    Ok(Statement::DropType(DropType { if_exists, name }))
}

impl Statement {
    /// What this statement does to the types later statements of its text may name, as if it
    /// had run: `CREATE TYPE` adds its type unless the name is taken, `DROP TYPE` removes it.
    pub fn name_types(&self, types: &mut CustomTypes) {
        match self {
            Statement::CreateType(create) => {
                types.entry(create.name.clone()).or_insert_with(|| create.data_type.clone());
            }
            Statement::DropType(drop) => {
                types.remove(&drop.name);
            }
            _ => {}
        }
    }
}
