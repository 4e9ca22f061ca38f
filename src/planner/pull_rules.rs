//! What a pull query may not hold, checked before it is planned and refused in ksqlDB's words
//! (`PullQueryValidator.java`): a join, a window, `GROUP BY`, `PARTITION BY`, `HAVING`, a
//! `LIMIT` where `ksql.query.pull.limit.clause.enabled` is false, `EMIT FINAL`, and the
//! `ROWPARTITION` and `ROWOFFSET` pseudo-columns.

use std::ops::ControlFlow;

use sqlparser::ast::{Expr, GroupByExpr, SelectItem, SetExpr, visit_expressions};

use crate::{
    catalog::source::{ROWOFFSET, ROWPARTITION},
    error::{Result, SluiceError},
    parser::{PULL_QUERY_HELP, Select, normalize_ident},
};

/// Refuses what a pull query (a `SELECT` without `EMIT CHANGES`) may not hold, in the order
/// ksqlDB checks it; `limit_enabled` says whether it may have a `LIMIT`.
pub fn check(select: &Select, limit_enabled: bool) -> Result<()> {
    let SetExpr::Select(body) = select.query.body.as_ref() else { return Ok(()) };
    let refusal = if body.from.iter().any(|f| !f.joins.is_empty()) {
        Some("Pull queries don't support JOIN clauses.".to_string())
    } else if select.window.is_some() {
        Some("Pull queries don't support WINDOW clauses.".to_string())
    } else if !matches!(&body.group_by, GroupByExpr::Expressions(e, _) if e.is_empty()) {
        Some("Pull queries don't support GROUP BY clauses.".to_string())
    } else if select.partition_by.is_some() {
        Some("Pull queries don't support PARTITION BY clauses.".to_string())
    } else if body.having.is_some() {
        Some("Pull queries don't support HAVING clauses.".to_string())
    } else if select.limit.is_some() && !limit_enabled {
        Some("LIMIT clause in pull queries is currently disabled. You can enable them by setting ksql.query.pull.limit.clause.enabled=true.".to_string())
    } else if select.emit_final {
        Some("Pull queries don't support EMIT clauses.".to_string())
    } else {
        let selected = body.projection.iter().filter_map(|item| match item {
            SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. } => Some(expr),
            _ => None,
        });
        let in_select = disallowed_columns(selected);
        let in_where = disallowed_columns(body.selection.iter());
        if !in_select.is_empty() {
            Some(format!("Pull queries don't support the following columns in SELECT clauses: {}\n", in_select.join(", ")))
        } else if !in_where.is_empty() {
            Some(format!("Pull queries don't support the following columns in WHERE clauses: {}\n", in_where.join(", ")))
        } else {
            None
        }
    };
    match refusal {
        Some(message) => Err(SluiceError::Plan(format!("{message}{PULL_QUERY_HELP}"))),
        None => Ok(()),
    }
}

/// The pseudo-columns a pull query may not read that `exprs` read, each once, as ksqlDB
/// names them.
fn disallowed_columns<'a>(exprs: impl Iterator<Item = &'a Expr>) -> Vec<String> {
    let mut found = Vec::new();
    for expr in exprs {
        let _ = visit_expressions(expr, |e| {
            let column = match e {
                Expr::Identifier(ident) => Some(normalize_ident(ident)),
                Expr::CompoundIdentifier(parts) => parts.last().map(normalize_ident),
                _ => None,
            };
            if let Some(column) = column.filter(|c| c == ROWPARTITION || c == ROWOFFSET) {
                let named = format!("`{column}`");
                if !found.contains(&named) {
                    found.push(named);
                }
            }
            ControlFlow::<()>::Continue(())
        });
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::{KsqlParser, Statement};

    fn checked(sql: &str) -> std::result::Result<(), String> {
        let Statement::Select(select) = KsqlParser::parse_one(sql).unwrap().statement else { panic!("{sql} is a SELECT") };
        check(&select, true).map_err(|e| e.to_string())
    }

    #[test]
    fn refuses_what_ksqldb_refuses_with_its_help() {
        assert!(checked("SELECT * FROM T WHERE K = 1;").is_ok());
        assert!(checked("SELECT ROWTIME FROM T;").is_ok());
        let grouped = checked("SELECT K, COUNT(*) FROM S GROUP BY K;").unwrap_err();
        assert!(grouped.contains("Pull queries don't support GROUP BY clauses. See https://cnfl.io/queries for more info.\nAdd EMIT CHANGES"), "{grouped}");
        let windowed = checked("SELECT * FROM S WINDOW TUMBLING (SIZE 1 SECOND);").unwrap_err();
        assert!(windowed.contains("Pull queries don't support WINDOW clauses."), "{windowed}");
        let selected = checked("SELECT ROWOFFSET, S.ROWOFFSET FROM S;").unwrap_err();
        assert!(selected.contains("in SELECT clauses: `ROWOFFSET`\n See"), "{selected}");
        let Statement::Select(limited) = KsqlParser::parse_one("SELECT * FROM T LIMIT 2;").unwrap().statement else { unreachable!() };
        let disabled = check(&limited, false).unwrap_err().to_string();
        assert!(disabled.starts_with("LIMIT clause in pull queries is currently disabled."), "{disabled}");
        let filtered = checked("SELECT * FROM S WHERE ROWPARTITION = 0;").unwrap_err();
        assert!(filtered.contains("in WHERE clauses: `ROWPARTITION`\n"), "{filtered}");
    }
}
