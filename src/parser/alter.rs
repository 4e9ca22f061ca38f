//! `ALTER STREAM|TABLE … ADD COLUMN …`: value columns added to a declared stream or table.

use std::fmt;

use super::{
    Cursor, Statement, display_ident,
    stream::{SourceKind, parse_kind, parse_type},
};
use crate::{catalog::types::SqlType, error::Result};

/// ```text
/// ALTER (STREAM | TABLE) name ADD [COLUMN] column type [, ADD [COLUMN] column type]*;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlterSource {
    pub kind: SourceKind,
    pub name: String,
    /// The value columns added, in order.
    pub columns: Vec<(String, SqlType)>,
}

impl fmt::Display for AlterSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ALTER {} {}", self.kind, display_ident(&self.name))?;
        for (index, (name, data_type)) in self.columns.iter().enumerate() {
            let separator = if index == 0 { " " } else { ", " };
            write!(f, "{separator}ADD COLUMN {} {data_type}", display_ident(name))?;
        }
        Ok(())
    }
}

/// `ALTER …`. ksqlDB's `ALTER SYSTEM` (Confluent Cloud's) is refused as not supported.
pub(super) fn parse_alter(cursor: &mut Cursor) -> Result<Statement> {
    cursor.expect_word("ALTER")?;
    if cursor.peek_word_is("SYSTEM") {
        return Err(crate::error::SluiceError::NotImplemented("ALTER SYSTEM statements".into()));
    }
    let kind = parse_kind(cursor, "STREAM or TABLE after ALTER")?;
    let name = cursor.identifier(&format!("the name of the {} to alter", kind.word()))?;
    let mut columns = Vec::new();
    loop {
        cursor.expect_word("ADD")?;
        cursor.eat_word("COLUMN");
        let column = cursor.identifier("the name of the column to add")?;
        columns.push((column, parse_type(cursor)?));
        if !cursor.eat(&sqlparser::tokenizer::Token::Comma) {
            break;
        }
    }
    Ok(Statement::AlterSource(AlterSource { kind, name, columns }))
}

#[cfg(test)]
mod tests {
    use crate::parser::{KsqlParser, Statement};

    #[test]
    fn columns_are_added_with_or_without_the_word_column() {
        let parsed = KsqlParser::parse_one("ALTER STREAM a ADD COLUMN col2 INT, ADD c3 ARRAY<STRING>;").unwrap();
        let Statement::AlterSource(alter) = &parsed.statement else { panic!("not an ALTER: {parsed:?}") };
        assert_eq!(alter.name, "A");
        let names: Vec<&str> = alter.columns.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["COL2", "C3"]);
        assert_eq!(parsed.statement.to_string(), "ALTER STREAM A ADD COLUMN COL2 INTEGER, ADD COLUMN C3 ARRAY<STRING>");
    }

    #[test]
    fn a_missing_add_says_where_and_what_was_expected() {
        let error = KsqlParser::parse_one("ALTER TABLE t DROP COLUMN x;").unwrap_err().to_string();
        assert!(error.contains("1:15") && error.contains("ADD"), "{error}");
        let system = KsqlParser::parse_one("ALTER SYSTEM 'a'='b';").unwrap_err().to_string();
        assert!(system.contains("ALTER SYSTEM"), "{system}");
    }
}
