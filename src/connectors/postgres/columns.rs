//! The columns of a PostgreSQL query: names and the kind of value each holds, read from the
//! statement's description without running it.

use tokio_postgres::{Client, types::Type};

use crate::error::Result;

/// What a column holds, as far as readers of its text care: the JDBC type it maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    Boolean,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    Numeric,
    Date,
    Time,
    Timestamp,
    TimestampTz,
    Bytes,
    /// Character types, read as Java strings (`--null-string` applies).
    Text,
    /// Anything else, kept as PostgreSQL's text for it (`--null-non-string` applies).
    Other,
}

impl ColumnKind {
    pub fn of(ty: &Type) -> ColumnKind {
        match *ty {
            Type::BOOL => ColumnKind::Boolean,
            Type::INT2 => ColumnKind::Int16,
            Type::INT4 => ColumnKind::Int32,
            Type::INT8 => ColumnKind::Int64,
            Type::FLOAT4 => ColumnKind::Float32,
            Type::FLOAT8 => ColumnKind::Float64,
            Type::NUMERIC => ColumnKind::Numeric,
            Type::DATE => ColumnKind::Date,
            Type::TIME | Type::TIMETZ => ColumnKind::Time,
            Type::TIMESTAMP => ColumnKind::Timestamp,
            Type::TIMESTAMPTZ => ColumnKind::TimestampTz,
            Type::BYTEA => ColumnKind::Bytes,
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::CHAR => ColumnKind::Text,
            _ => ColumnKind::Other,
        }
    }

    pub fn is_string(self) -> bool {
        self == ColumnKind::Text
    }

    pub fn is_integer(self) -> bool {
        matches!(self, ColumnKind::Int16 | ColumnKind::Int32 | ColumnKind::Int64)
    }
}

/// A column of the imported rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub kind: ColumnKind,
    /// PostgreSQL's type modifier: a NUMERIC's precision and scale, a VARCHAR's length; -1 none.
    pub modifier: i32,
    /// False for a table column declared NOT NULL; true when unknown (a computed column).
    pub nullable: bool,
}

impl Column {
    /// A NUMERIC column's declared precision and scale; `None` when unconstrained.
    pub fn numeric_precision_scale(&self) -> Option<(u32, u32)> {
        (self.kind == ColumnKind::Numeric && self.modifier >= 4).then(|| {
            let packed = (self.modifier - 4) as u32;
            ((packed >> 16) & 0xffff, packed & 0xffff)
        })
    }
}

/// The columns a statement returns, without running it; nullability from the catalog for
/// columns taken straight from a table.
pub async fn describe(client: &Client, select: &str) -> Result<Vec<Column>> {
    let statement = client.prepare(select).await?;
    // Whether each column read from a table is NOT NULL there, asked in one query.
    let (tables, numbers): (Vec<u32>, Vec<i16>) = statement
        .columns()
        .iter()
        .filter_map(|c| c.table_oid().filter(|t| *t != 0).zip(c.column_id()))
        .unzip();
    let mut not_null = std::collections::HashSet::new();
    if !tables.is_empty() {
        let query = "SELECT a.attrelid, a.attnum FROM pg_attribute a \
                     JOIN unnest($1::oid[], $2::int2[]) AS c(rel, num) ON a.attrelid = c.rel AND a.attnum = c.num \
                     WHERE a.attnotnull";
        for row in client.query(query, &[&tables, &numbers]).await? {
            not_null.insert((row.get::<_, u32>(0), row.get::<_, i16>(1)));
        }
    }
    let mut columns = Vec::with_capacity(statement.columns().len());
    for column in statement.columns() {
        let nullable = !column.table_oid().zip(column.column_id()).is_some_and(|c| not_null.contains(&c));
        columns.push(Column {
            name: column.name().to_string(),
            kind: ColumnKind::of(column.type_()),
            modifier: column.type_modifier(),
            nullable,
        });
    }
    Ok(columns)
}
