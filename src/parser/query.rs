//! `SELECT … EMIT CHANGES`, `INSERT INTO … SELECT` and `INSERT INTO … VALUES`.

use std::fmt;

use sqlparser::{
    ast::{Expr, Query},
    tokenizer::{Token, TokenWithSpan},
};

use super::{
    Cursor, Statement,
    cursor::with_sqlparser,
    display_ident,
    window::{WindowSpec, duration, format_duration, parse_window},
};
use crate::error::{Result, SluiceError};

/// A query over a stream. sqlparser parses the `SELECT … FROM … WHERE …` part; the ksqlDB
/// clauses around it are taken out first so they cannot be mistaken for a table alias.
///
/// ```text
/// SELECT items FROM stream [WINDOW window] [WHERE condition] [GROUP BY expressions]
///     [HAVING condition] [PARTITION BY expression, …] [EMIT CHANGES | EMIT FINAL] [LIMIT n]
/// join: [INNER | LEFT [OUTER] | RIGHT [OUTER] | FULL [OUTER]] JOIN source [alias]
///     [WITHIN duration | WITHIN (before, after)] [GRACE PERIOD duration] ON condition
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Select {
    pub query: Query,
    /// The `WITHIN` of each join that has one, by the join's position in the `FROM` clause.
    pub withins: Vec<(usize, JoinWithin)>,
    pub window: Option<WindowSpec>,
    /// `PARTITION BY`: the expressions of the records' new key, one per key column.
    pub partition_by: Option<Vec<Expr>>,
    pub emit_changes: bool,
    /// `EMIT FINAL`: one row per window, when it closes.
    pub emit_final: bool,
    pub limit: Option<u64>,
}

/// What ksqlDB adds to its refusals of a pull query (`PullQueryValidator.java`).
pub const PULL_QUERY_HELP: &str = " See https://cnfl.io/queries for more info.\nAdd EMIT CHANGES if you intended to issue a push query.";

/// How far apart in time the records of two joined streams may be, and how late one may
/// arrive: `WITHIN before_and_after` or `WITHIN (before, after)`, `[GRACE PERIOD grace]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinWithin {
    /// A right record may be this much older than the left one.
    pub before_ms: i64,
    /// A right record may be this much newer than the left one.
    pub after_ms: i64,
    pub grace_ms: Option<i64>,
}

impl fmt::Display for JoinWithin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.before_ms == self.after_ms {
            write!(f, "WITHIN {}", format_duration(self.before_ms))?;
        } else {
            write!(f, "WITHIN ({}, {})", format_duration(self.before_ms), format_duration(self.after_ms))?;
        }
        if let Some(grace) = self.grace_ms {
            write!(f, " GRACE PERIOD {}", format_duration(grace))?;
        }
        Ok(())
    }
}

impl Select {
    /// The query as sqlparser prints it, each join's `WITHIN` put back after its source.
    fn query_text(&self) -> String {
        let mut text = super::with_struct_reads_written(&self.query).to_string();
        let sqlparser::ast::SetExpr::Select(select) = self.query.body.as_ref() else { return text };
        let joins = select.from.iter().flat_map(|f| &f.joins);
        for (i, join) in joins.enumerate() {
            let Some((_, within)) = self.withins.iter().find(|(at, _)| *at == i) else { continue };
            let (plain, relation) = (join.to_string(), join.relation.to_string());
            if let Some(at) = plain.find(&relation) {
                let end = at + relation.len();
                let windowed = format!("{} {within}{}", &plain[..end], &plain[end..]);
                text = text.replacen(&plain, &windowed, 1);
            }
        }
        text
    }
}

impl fmt::Display for Select {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.query_text())?;
        if let Some(window) = &self.window {
            write!(f, " {window}")?;
        }
        if let Some(partition_by) = &self.partition_by {
            let keys: Vec<String> = partition_by.iter().map(ToString::to_string).collect();
            write!(f, " PARTITION BY {}", keys.join(", "))?;
        }
        if self.emit_changes {
            write!(f, " EMIT CHANGES")?;
        }
        if self.emit_final {
            write!(f, " EMIT FINAL")?;
        }
        if let Some(limit) = self.limit {
            write!(f, " LIMIT {limit}")?;
        }
        Ok(())
    }
}

/// A persistent query writing into an existing stream.
///
/// ```text
/// INSERT INTO stream SELECT ... [EMIT CHANGES];
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct InsertSelect {
    pub target: String,
    pub select: Select,
}

impl fmt::Display for InsertSelect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "INSERT INTO {} {}", display_ident(&self.target), self.select)
    }
}

/// Writes one record into a stream's topic.
///
/// ```text
/// INSERT INTO stream [(column, ...)] VALUES (value, ...);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct InsertValues {
    pub target: String,
    pub columns: Option<Vec<String>>,
    pub values: Vec<Expr>,
}

impl fmt::Display for InsertValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "INSERT INTO {} ", display_ident(&self.target))?;
        if let Some(columns) = &self.columns {
            let names: Vec<String> = columns.iter().map(|c| display_ident(c)).collect();
            write!(f, "({}) ", names.join(", "))?;
        }
        let values: Vec<String> = self.values.iter().map(ToString::to_string).collect();
        write!(f, "VALUES ({})", values.join(", "))
    }
}

pub(super) fn parse_select(cursor: &mut Cursor) -> Result<Select> {
    if !cursor.peek_word_is("SELECT") {
        return Err(cursor.error("SELECT"));
    }
    let tokens = cursor.rest_of_statement();
    let clauses = split_ksql_clauses(tokens)?;
    let query = with_sqlparser(super::casts::rewrite(clauses.query, cursor.types())?, |p| p.parse_query())?;
    let partition_by = match clauses.partition_by {
        Some(tokens) => Some(parse_partition_by(tokens)?),
        None => None,
    };
    let window = match clauses.window {
        Some(tokens) => Some(parse_window(&mut Cursor::new(tokens))?),
        None => None,
    };
    let withins = clauses
        .withins
        .into_iter()
        .map(|(join, tokens)| Ok((join, parse_within(&mut Cursor::new(tokens))?)))
        .collect::<Result<_>>()?;
    Ok(Select {
        query: *query,
        withins,
        window,
        partition_by,
        emit_changes: clauses.emit_changes,
        emit_final: clauses.emit_final,
        limit: clauses.limit,
    })
}

/// The expressions after `PARTITION BY`; `()` names none, which ksqlDB refuses.
fn parse_partition_by(tokens: Vec<TokenWithSpan>) -> Result<Vec<Expr>> {
    let words: Vec<&Token> = tokens.iter().map(|t| &t.token).filter(|t| !matches!(t, Token::Whitespace(_))).collect();
    if matches!(words.as_slice(), [Token::LParen, Token::RParen]) {
        return Err(SluiceError::Plan("PARTITION BY requires at least one expression".into()));
    }
    with_sqlparser(tokens, |p| p.parse_comma_separated(|p| p.parse_expr()))
}

/// Parses `WITHIN …` up to the join's `ON`.
fn parse_within(cursor: &mut Cursor) -> Result<JoinWithin> {
    cursor.expect_word("WITHIN")?;
    let (before_ms, after_ms) = if cursor.eat(&Token::LParen) {
        let before = duration(cursor)?;
        cursor.expect(&Token::Comma, "',' and the time after, as in WITHIN (1 MINUTE, 2 MINUTES)")?;
        let after = duration(cursor)?;
        cursor.expect(&Token::RParen, "')' after the time after")?;
        (before, after)
    } else {
        let both = duration(cursor)?;
        (both, both)
    };
    let grace_ms = if cursor.eat_words(&["GRACE", "PERIOD"]) { Some(duration(cursor)?) } else { None };
    if !cursor.at_end() {
        return Err(cursor.error("GRACE PERIOD or ON after the join window"));
    }
    Ok(JoinWithin { before_ms, after_ms, grace_ms })
}

struct KsqlClauses {
    query: Vec<TokenWithSpan>,
    /// The tokens from `WITHIN` to a join's `ON`, by the join's position.
    withins: Vec<(usize, Vec<TokenWithSpan>)>,
    /// The tokens after `WINDOW`, to the closing parenthesis.
    window: Option<Vec<TokenWithSpan>>,
    partition_by: Option<Vec<TokenWithSpan>>,
    emit_changes: bool,
    emit_final: bool,
    limit: Option<u64>,
}

/// How `token` changes the depth of parentheses.
fn nesting(token: &TokenWithSpan) -> i32 {
    match token.token {
        Token::LParen => 1,
        Token::RParen => -1,
        _ => 0,
    }
}

fn word(token: &TokenWithSpan) -> Option<String> {
    match &token.token {
        Token::Word(w) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
        _ => None,
    }
}

/// Takes `WINDOW`, `PARTITION BY`, `EMIT CHANGES`/`EMIT FINAL` and a trailing `LIMIT n` out
/// of a query's tokens.
fn split_ksql_clauses(tokens: Vec<TokenWithSpan>) -> Result<KsqlClauses> {
    let mut clauses = KsqlClauses {
        query: Vec::new(),
        withins: Vec::new(),
        window: None,
        partition_by: None,
        emit_changes: false,
        emit_final: false,
        limit: None,
    };
    let mut depth = 0i32;
    let mut joins = 0usize;
    let mut i = 0;
    while i < tokens.len() {
        let token = &tokens[i];
        depth += nesting(token);
        let mut next_word = tokens.get(i + 1).and_then(word);
        // ksqlDB lets a window be named (`WINDOW w SESSION (…)`); the name means nothing.
        let kind_after_name = tokens.get(i + 2).and_then(word);
        if word(token).as_deref() == Some("WINDOW")
            && matches!(tokens.get(i + 1).map(|t| &t.token), Some(Token::Word(_)))
            && matches!(kind_after_name.as_deref(), Some("TUMBLING" | "HOPPING" | "SESSION"))
        {
            i += 1;
            next_word = kind_after_name;
        }
        match (depth, word(token).as_deref(), next_word.as_deref()) {
            (0, Some("JOIN"), _) => {
                joins += 1;
                clauses.query.push(token.clone());
                i += 1;
            }
            (0, Some("WITHIN"), _) if joins > 0 => {
                let mut end = i + 1;
                let mut inner = 0i32;
                while end < tokens.len() {
                    inner += nesting(&tokens[end]);
                    if inner == 0 && word(&tokens[end]).as_deref() == Some("ON") {
                        break;
                    }
                    end += 1;
                }
                if clauses.withins.iter().any(|(join, _)| *join == joins - 1) {
                    return Err(Cursor::new(tokens[i..].to_vec()).error("one WITHIN per join"));
                }
                clauses.withins.push((joins - 1, tokens[i..end].to_vec()));
                i = end;
            }
            (0, Some("EMIT"), Some("CHANGES")) => {
                clauses.emit_changes = true;
                i += 2;
            }
            (0, Some("EMIT"), Some("FINAL")) => {
                clauses.emit_final = true;
                i += 2;
            }
            (0, Some("WINDOW"), Some("TUMBLING" | "HOPPING" | "SESSION")) => {
                // The window's kind, then its parenthesised settings.
                let start = i + 1;
                let mut end = start + 1;
                let mut inner = 0i32;
                while end < tokens.len() {
                    inner += nesting(&tokens[end]);
                    end += 1;
                    if inner == 0 {
                        break;
                    }
                }
                if clauses.window.is_some() {
                    return Err(Cursor::new(tokens[i..].to_vec()).error("one WINDOW clause"));
                }
                clauses.window = Some(tokens[start..end].to_vec());
                i = end;
            }
            (0, Some("PARTITION"), Some("BY")) => {
                let start = i + 2;
                let mut end = start;
                let mut inner = 0i32;
                while end < tokens.len() {
                    inner += nesting(&tokens[end]);
                    let stop = inner == 0
                        && matches!(
                            word(&tokens[end]).as_deref(),
                            Some("EMIT" | "LIMIT" | "GROUP" | "HAVING" | "WINDOW")
                        );
                    if stop {
                        break;
                    }
                    end += 1;
                }
                clauses.partition_by = Some(tokens[start..end].to_vec());
                i = end;
            }
            (0, Some("LIMIT"), _) => {
                match tokens.get(i + 1).map(|t| &t.token) {
                    Some(Token::Number(n, _)) if n.parse::<u64>().is_ok() => {
                        clauses.limit = n.parse().ok();
                    }
                    Some(Token::Number(n, _)) if n.parse::<f64>().is_ok() => {
                        return Err(SluiceError::Plan("Failed to prepare statement: Value must be integer for command: LIMIT".into()));
                    }
                    Some(Token::Minus) if !clauses.emit_changes && matches!(tokens.get(i + 2).map(|t| &t.token), Some(Token::Number(..))) => {
                        return Err(SluiceError::Plan(format!(
                            "Pull queries don't support negative integers in the LIMIT clause.{PULL_QUERY_HELP}"
                        )));
                    }
                    _ => {
                        let mut rest = Cursor::new(tokens[i + 1..].to_vec());
                        return Err(rest.number("a whole number after LIMIT").unwrap_err());
                    }
                }
                i += 2;
            }
            _ => {
                clauses.query.push(token.clone());
                i += 1;
            }
        }
    }
    Ok(clauses)
}

pub(super) fn parse_insert(cursor: &mut Cursor) -> Result<Statement> {
    cursor.expect_word("INSERT")?;
    cursor.expect_word("INTO")?;
    let target = cursor.identifier("the name of the stream to insert into")?;
    if cursor.eat_word("WITH") {
        return Err(SluiceError::NotImplemented(
            "WITH (QUERY_ID=...) on INSERT INTO".into(),
        ));
    }
    if cursor.peek_word_is("SELECT") {
        let select = parse_select(cursor)?;
        return Ok(Statement::InsertSelect(InsertSelect { target, select }));
    }
    let columns = if cursor.eat(&Token::LParen) {
        let mut names = Vec::new();
        loop {
            names.push(cursor.identifier("a column name")?);
            if !cursor.eat(&Token::Comma) {
                break;
            }
        }
        cursor.expect(&Token::RParen, "',' or ')' after a column name")?;
        Some(names)
    } else {
        None
    };
    if !cursor.eat_word("VALUES") {
        return Err(cursor.error("SELECT, VALUES or a column list after the stream name"));
    }
    let tokens = cursor.rest_of_statement();
    let values = with_sqlparser(tokens, |p| {
        p.expect_token(&Token::LParen)?;
        let values = p.parse_comma_separated(|p| p.parse_expr())?;
        p.expect_token(&Token::RParen)?;
        Ok(values)
    })?;
    Ok(Statement::InsertValues(InsertValues {
        target,
        columns,
        values,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::KsqlParser;

    fn select(sql: &str) -> Select {
        match KsqlParser::parse_one(sql).unwrap().statement {
            Statement::Select(select) => select,
            other => panic!("not a SELECT: {other}"),
        }
    }

    #[test]
    fn a_joins_window_is_read_and_printed_back_in_place() {
        let sql = "SELECT * FROM A JOIN B WITHIN (1 SECOND, 2 MINUTES) GRACE PERIOD 5 SECONDS ON A.X = B.X \
                   LEFT JOIN C ON A.X = C.X EMIT CHANGES;";
        let parsed = select(sql);
        let within = JoinWithin { before_ms: 1_000, after_ms: 120_000, grace_ms: Some(5_000) };
        assert_eq!(parsed.withins, vec![(0, within)]);
        let printed = parsed.to_string();
        assert!(printed.contains("B WITHIN (1 SECONDS, 2 MINUTES) GRACE PERIOD 5 SECONDS ON"), "{printed}");
        assert_eq!(select(&format!("{printed};")), parsed, "what is printed reads back the same");
        assert_eq!(select("SELECT * FROM A JOIN B WITHIN 1 HOUR ON A.X = B.X EMIT CHANGES;").withins[0].1.after_ms, 3_600_000);
    }

    #[test]
    fn struct_field_reads_are_subscripts_that_print_back_as_written() {
        let parsed = select("SELECT a->b['k']->c[1]->D, `x`->`y z`->* FROM s EMIT CHANGES;");
        let query = parsed.query.to_string();
        assert!(query.contains(r#"a["B"]['k']["C"][1]["D"]"#), "{query}");
        assert!(query.contains(r#"`x`["y z"]["*"]"#), "{query}");
        let printed = parsed.to_string();
        assert!(printed.contains("a -> B['k'] -> C[1] -> D"), "{printed}");
        assert_eq!(select(&format!("{printed};")), parsed, "what is printed reads back the same");
    }

    #[test]
    fn lambdas_parse_and_print_back_with_ksqldbs_arrow() {
        let parsed = select("SELECT TRANSFORM(m, (k, v) => UCASE(k), (k, v) => FILTER(v, x => x->f > 1)) FROM s EMIT CHANGES;");
        let printed = parsed.to_string();
        assert!(printed.contains("TRANSFORM(m, (k, v) => UCASE(k), (k, v) => FILTER(v, x => x -> F > 1))"), "{printed}");
        assert_eq!(select(&format!("{printed};")), parsed, "what is printed reads back the same");
    }

    #[test]
    fn a_bad_window_says_what_was_expected() {
        let error = KsqlParser::parse_one("SELECT * FROM A JOIN B WITHIN 1 FORTNIGHT ON A.X = B.X EMIT CHANGES;").unwrap_err();
        assert!(error.to_string().contains("a time unit"), "{error}");
    }
}
