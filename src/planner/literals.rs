//! ksqlDB's refusal of number literals no type holds: a whole number past BIGINT's range and a
//! DOUBLE written with an exponent that overflows, each named with its line and column.

use std::{collections::HashSet, ops::ControlFlow};

use sqlparser::{
    ast::{Expr, Query, UnaryOperator, Value, ValueWithSpan, visit_expressions},
    tokenizer::Location,
};

use crate::error::{Result, SluiceError};

/// The first number literal of `query` that no ksqlDB type holds.
pub fn check(query: &Query) -> Result<()> {
    // Expressions are visited parents first, so a negated number is met before the number.
    let mut negated: HashSet<(u64, u64)> = HashSet::new();
    let refusal = visit_expressions(query, |expr: &Expr| {
        let (number, sign) = match expr {
            Expr::UnaryOp { op: UnaryOperator::Minus, expr: inner } => match inner.as_ref() {
                Expr::Value(value) => {
                    negated.insert(at(value.span.start));
                    (value, "-")
                }
                _ => return ControlFlow::Continue(()),
            },
            Expr::Value(value) if !negated.contains(&at(value.span.start)) => (value, ""),
            _ => return ControlFlow::Continue(()),
        };
        match refused(number, sign) {
            Some(message) => ControlFlow::Break(SluiceError::Plan(message)),
            None => ControlFlow::Continue(()),
        }
    });
    match refusal {
        ControlFlow::Break(error) => Err(error),
        ControlFlow::Continue(()) => Ok(()),
    }
}

fn at(location: Location) -> (u64, u64) {
    (location.line, location.column)
}

/// ksqlDB's words for `sign` and the number `value` when no type holds it.
fn refused(value: &ValueWithSpan, sign: &str) -> Option<String> {
    let Value::Number(text, _) = &value.value else { return None };
    let written = format!("{sign}{text}");
    let location = value.span.start;
    let problem = if text.contains(['e', 'E']) {
        written.parse::<f64>().ok().filter(|v| v.is_infinite()).map(|_| "Number overflows DOUBLE")
    } else if !text.contains('.') {
        written.parse::<i64>().is_err().then_some("Invalid numeric literal")
    } else {
        None
    }?;
    Some(format!("line {}:{}: {problem}: {written}", location.line, location.column))
}

#[cfg(test)]
mod tests {
    use sqlparser::{dialect::GenericDialect, parser::Parser};

    use super::*;

    fn checked(sql: &str) -> std::result::Result<(), String> {
        let query = Parser::new(&GenericDialect {}).try_with_sql(sql).unwrap().parse_query().unwrap();
        check(&query).map_err(|e| e.to_string())
    }

    #[test]
    fn numbers_past_bigint_and_double_are_refused_with_their_place() {
        assert!(checked("SELECT -9223372036854775808, 9223372036854775807, 1.7976931348623157E308 FROM s").is_ok());
        assert!(checked("SELECT 99999999999999999999.5 FROM s").is_ok(), "a DECIMAL literal");
        let refusal = checked("SELECT K,\n 9223372036854775808 FROM s").unwrap_err();
        assert!(refusal.contains("line 2:2: Invalid numeric literal: 9223372036854775808"), "{refusal}");
        let refusal = checked("SELECT -9223372036854775809 FROM s").unwrap_err();
        assert!(refusal.contains("Invalid numeric literal: -9223372036854775809"), "{refusal}");
        let refusal = checked("SELECT -1.7976931348623160E308 FROM s").unwrap_err();
        assert!(refusal.contains("Number overflows DOUBLE: -1.7976931348623160E308"), "{refusal}");
    }
}
