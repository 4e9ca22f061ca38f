//! `KsqlParser`: ksqlDB's dialect over sqlparser, with its own statements and plain-worded errors.
//!
//! Statements sqlparser does not know (`CREATE STREAM`, `EMIT CHANGES`, `PRINT`, `TERMINATE`,
//! `SHOW STREAMS`, …) are recognised here at the token level; the `SELECT` inside them and every
//! expression are handed to sqlparser. Words that are not sqlparser keywords are matched by value.

mod admin;
mod alter;
mod casts;
mod connector;
mod cursor;
mod custom_type;
mod dialect;
mod query;
mod stream;
pub mod variables;
pub mod window;

use std::{fmt, ops::ControlFlow};

use sqlparser::{
    ast::{
        AccessExpr, BinaryOperator, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgOperator, FunctionArguments,
        Ident, LambdaFunctionParameter, OneOrManyWithParens, Subscript, Value, visit_expressions_mut,
    },
    tokenizer::{Token, TokenWithSpan, Tokenizer},
};

pub use admin::{
    DefineVariable, Describe, DescribeTarget, Explain, Print, QueryAction, QueryControl, QueryTarget, SetProperty, Show,
    ShowKind, UndefineVariable, UnsetProperty,
};
pub use alter::AlterSource;
pub use connector::{ConnectorKind, CreateConnector, DescribeConnector, DropConnector};
pub use casts::{KSQL_CAST, parse_column_type};
pub use cursor::Cursor;
pub use custom_type::{CreateType, DropType};
pub use query::{InsertSelect, InsertValues, JoinWithin, PULL_QUERY_HELP, Select};
pub use window::{WindowKind, WindowSpec};
pub use stream::{ColumnDef, CreateAsSelect, CreateSource, DropSource, HeaderColumn, Properties, PropertyValue, SourceKind};

use crate::{
    catalog::types::CustomTypes,
    error::{Location, ParseError, Result, SluiceError},
};

/// One statement of the dialect.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    CreateSource(CreateSource),
    CreateAsSelect(CreateAsSelect),
    InsertSelect(InsertSelect),
    InsertValues(InsertValues),
    Select(Select),
    Show(Show),
    Describe(Describe),
    DropSource(DropSource),
    QueryControl(QueryControl),
    Explain(Explain),
    Print(Print),
    Set(SetProperty),
    Unset(UnsetProperty),
    Define(DefineVariable),
    Undefine(UndefineVariable),
    CreateConnector(CreateConnector),
    DropConnector(DropConnector),
    DescribeConnector(DescribeConnector),
    CreateType(CreateType),
    DropType(DropType),
    AlterSource(AlterSource),
}

impl fmt::Display for Statement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Statement::CreateSource(s) => s.fmt(f),
            Statement::CreateAsSelect(s) => s.fmt(f),
            Statement::InsertSelect(s) => s.fmt(f),
            Statement::InsertValues(s) => s.fmt(f),
            Statement::Select(s) => s.fmt(f),
            Statement::Show(s) => s.fmt(f),
            Statement::Describe(s) => s.fmt(f),
            Statement::DropSource(s) => s.fmt(f),
            Statement::QueryControl(s) => s.fmt(f),
            Statement::Explain(s) => s.fmt(f),
            Statement::Print(s) => s.fmt(f),
            Statement::Set(s) => s.fmt(f),
            Statement::Unset(s) => s.fmt(f),
            Statement::Define(s) => s.fmt(f),
            Statement::Undefine(s) => s.fmt(f),
            Statement::CreateConnector(s) => s.fmt(f),
            Statement::DropConnector(s) => s.fmt(f),
            Statement::DescribeConnector(s) => s.fmt(f),
            Statement::CreateType(s) => s.fmt(f),
            Statement::DropType(s) => s.fmt(f),
            Statement::AlterSource(s) => s.fmt(f),
        }
    }
}

/// One statement's text, not yet parsed, and where it starts in the text it was split from.
#[derive(Debug, Clone, PartialEq)]
pub struct StatementText {
    pub text: String,
    pub location: Location,
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
        Self::parse_with_types(sql, &CustomTypes::new())
    }

    /// Parses every statement of `sql`, whose column types may name `types` and the types its
    /// own `CREATE TYPE`s name before them.
    pub fn parse_with_types(sql: &str, types: &CustomTypes) -> Result<Vec<ParsedStatement>> {
        let tokens = dialect::lambda_arrows(dialect::niladic_words_as_names(struct_field_reads(tokenize(sql)?)));
        let mut cursor = Cursor::new(tokens).with_types(types.clone());
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
            statement.name_types(cursor.types_mut());
            statements.push(ParsedStatement {
                statement,
                text: slice(sql, start, text_end).to_string(),
                location: start,
            });
        }
        Ok(statements)
    }

    /// Splits `sql` into its statements' texts at each `;` outside quotes and comments, without
    /// parsing them: what `${name}` substitution is applied to, one statement at a time.
    pub fn split(sql: &str) -> Result<Vec<StatementText>> {
        let mut statements = Vec::new();
        let mut start = None;
        for token in tokenize(sql)? {
            match token.token {
                Token::Whitespace(_) => {}
                Token::SemiColon => {
                    if let Some(at) = start.take() {
                        statements.push(StatementText {
                            text: slice(sql, at, cursor::to_location(token.span.end)).to_string(),
                            location: at,
                        });
                    }
                }
                _ => {
                    start.get_or_insert(cursor::to_location(token.span.start));
                }
            }
        }
        if let Some(at) = start {
            let end = Location { line: u64::MAX, column: 1 };
            statements.push(StatementText {
                text: slice(sql, at, end).to_string(),
                location: at,
            });
        }
        Ok(statements)
    }

    /// Parses one statement split from a longer text, where it started at `at`: a syntax
    /// error's line and column point into the longer text.
    pub fn parse_split(statement: &str, at: Location, types: &CustomTypes) -> Result<ParsedStatement> {
        let shift = |l: Location| Location {
            line: at.line + l.line - 1,
            column: if l.line == 1 { at.column + l.column - 1 } else { l.column },
        };
        match Self::parse_one_with_types(statement, types) {
            Ok(mut parsed) => {
                parsed.location = shift(parsed.location);
                Ok(parsed)
            }
            Err(SluiceError::Parse(mut error)) => {
                error.location = shift(error.location);
                Err(SluiceError::Parse(error))
            }
            Err(other) => Err(other),
        }
    }

    /// Parses exactly one statement.
    pub fn parse_one(sql: &str) -> Result<ParsedStatement> {
        Self::parse_one_with_types(sql, &CustomTypes::new())
    }

    /// Parses exactly one statement, whose column types may name `types`.
    pub fn parse_one_with_types(sql: &str, types: &CustomTypes) -> Result<ParsedStatement> {
        let mut all = Self::parse_with_types(sql, types)?;
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
            "TERMINATE" | "PAUSE" | "RESUME" => admin::parse_query_control(cursor),
            "EXPLAIN" => admin::parse_explain(cursor),
            "PRINT" => admin::parse_print(cursor),
            "SET" => admin::parse_set(cursor),
            "UNSET" => admin::parse_unset(cursor),
            "DEFINE" => admin::parse_define(cursor),
            "UNDEFINE" => admin::parse_undefine(cursor),
            "ALTER" => alter::parse_alter(cursor),
            "ASSERT" => Err(SluiceError::NotImplemented("ASSERT statements".into())),
            _ => Err(cursor.error(
                "a statement such as CREATE, SELECT, INSERT, SHOW, DESCRIBE, EXPLAIN, DROP, ALTER, TERMINATE, PAUSE, RESUME, PRINT, SET or DEFINE",
            )),
        }
    }
}

/// The tokens of `sql`, or where it holds text that is no SQL token.
fn tokenize(sql: &str) -> Result<Vec<TokenWithSpan>> {
    Tokenizer::new(&dialect::KsqlDialect, sql)
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
        })
}

/// ksqlDB's struct field read `s->field` as the subscript sqlparser and DataFusion read, its
/// name a double-quoted string that tells it from a map's key (`s["FIELD"]`, upper-cased unless
/// the field is quoted); `s->*` as `s["*"]`, for the projection to expand.
fn struct_field_reads(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let mut read = Vec::with_capacity(tokens.len());
    let mut tokens = tokens.into_iter().peekable();
    while let Some(token) = tokens.next() {
        if token.token != Token::Arrow {
            read.push(token);
            continue;
        }
        while tokens.next_if(|t| matches!(t.token, Token::Whitespace(_))).is_some() {}
        let field = tokens.next_if(|t| matches!(t.token, Token::Word(_) | Token::Mul));
        let (name, span) = match field {
            Some(TokenWithSpan { token: Token::Word(word), span }) => match word.quote_style {
                Some(_) => (word.value, span),
                None => (word.value.to_ascii_uppercase(), span),
            },
            Some(TokenWithSpan { span, .. }) => ("*".to_string(), span),
            None => {
                read.push(token);
                continue;
            }
        };
        read.push(TokenWithSpan::new(Token::LBracket, token.span));
        read.push(TokenWithSpan::new(Token::DoubleQuotedString(name), span));
        read.push(TokenWithSpan::new(Token::RBracket, span));
    }
    read
}

/// `query` printed as it was written: each struct field read `s["FIELD"]` (see
/// [`struct_field_reads`]) as `s->FIELD` again, so what is printed reads back the same.
pub(crate) fn with_struct_reads_written(query: &sqlparser::ast::Query) -> sqlparser::ast::Query {
    let mut query = query.clone();
    let _ = visit_expressions_mut(&mut query, |expr| {
        struct_reads_written(expr);
        lambdas_written(expr);
        ControlFlow::<()>::Continue(())
    });
    query
}

/// Each lambda argument of a call as ksqlDB writes it, `x => body` or `(x, y) => body`: sqlparser
/// prints its own lambdas with `->`, which would read back as a struct field.
fn lambdas_written(expr: &mut Expr) {
    let Expr::Function(Function { args: FunctionArguments::List(list), .. }) = expr else { return };
    for arg in &mut list.args {
        let FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Lambda(lambda))) = arg else { continue };
        let param = |p: &LambdaFunctionParameter| Expr::Identifier(p.name.clone());
        let name = match &lambda.params {
            OneOrManyWithParens::One(p) => param(p),
            OneOrManyWithParens::Many(ps) => Expr::Tuple(ps.iter().map(param).collect()),
        };
        *arg = FunctionArg::ExprNamed {
            name,
            arg: FunctionArgExpr::Expr(lambda.body.as_ref().clone()),
            operator: FunctionArgOperator::RightArrow,
        };
    }
}

fn struct_reads_written(expr: &mut Expr) {
    let Expr::CompoundFieldAccess { root, access_chain } = expr else { return };
    let field = |access: &AccessExpr| match access {
        AccessExpr::Subscript(Subscript::Index { index: Expr::Value(value) }) => match &value.value {
            Value::DoubleQuotedString(field) => Some(field.clone()),
            _ => None,
        },
        _ => None,
    };
    if !access_chain.iter().any(|a| field(a).is_some()) {
        return;
    }
    let subscripted = |root: Expr, chain: &mut Vec<AccessExpr>| match chain.is_empty() {
        true => root,
        false => Expr::CompoundFieldAccess { root: Box::new(root), access_chain: std::mem::take(chain) },
    };
    let mut written = root.as_ref().clone();
    let mut pending = Vec::new();
    for access in std::mem::take(access_chain) {
        let Some(name) = field(&access) else {
            pending.push(access);
            continue;
        };
        let plain = name.chars().next().is_some_and(|c| c.is_ascii_uppercase() || c == '_')
            && name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        let right = match name.as_str() {
            "*" => Expr::Identifier(Ident::new("*")),
            _ if plain => Expr::Identifier(Ident::new(name)),
            _ => Expr::Identifier(Ident::with_quote('`', name)),
        };
        written = Expr::BinaryOp {
            left: Box::new(subscripted(written, &mut pending)),
            op: BinaryOperator::Arrow,
            right: Box::new(right),
        };
    }
    *expr = subscripted(written, &mut pending);
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
