//! `CAST`s sqlparser and DataFusion cannot make as ksqlDB makes them: to an ARRAY, MAP or STRUCT
//! (fields matched by name), and to a type `CREATE TYPE` named.
//!
//! A cast to a nested type becomes a call of `KSQL_CAST(value, 'type')`, the type written out in
//! full; a cast to a named scalar type names that type instead. Other casts are left to sqlparser.

use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer, Word};

use super::{Cursor, stream::parse_type};
use crate::{
    catalog::types::{CustomTypes, SqlType},
    error::{Result, SluiceError},
};

/// The function a cast to a nested type becomes.
pub const KSQL_CAST: &str = "KSQL_CAST";

/// `tokens` with each cast to a nested or named type rewritten; an unknown type name is refused.
pub(super) fn rewrite(tokens: Vec<TokenWithSpan>, types: &CustomTypes) -> Result<Vec<TokenWithSpan>> {
    let mut out = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        if let Some((as_at, close)) = cast_at(&tokens, i) {
            let target = &tokens[as_at + 1..close];
            if let Some((data_type, named)) = read_type(target, types)? {
                let value = rewrite(tokens[i + 2..as_at].to_vec(), types)?;
                let at = tokens[i].span;
                let token = |token: Token| TokenWithSpan { token, span: at };
                if data_type.is_nested() {
                    out.push(token(Token::Word(Word { value: KSQL_CAST.into(), quote_style: None, keyword: sqlparser::keywords::Keyword::NoKeyword })));
                    out.push(token(Token::LParen));
                    out.extend(value);
                    out.push(token(Token::Comma));
                    out.push(token(Token::SingleQuotedString(data_type.to_string())));
                    out.push(token(Token::RParen));
                    i = close + 1;
                    continue;
                }
                if named {
                    out.extend(tokens[i..=i + 1].iter().cloned());
                    out.extend(value);
                    out.push(tokens[as_at].clone());
                    out.extend(type_tokens(&data_type, at)?);
                    out.push(tokens[close].clone());
                    i = close + 1;
                    continue;
                }
            }
        }
        out.push(tokens[i].clone());
        i += 1;
    }
    Ok(out)
}

/// For `CAST (` at `at`: where its last top-level `AS` and its closing `)` are.
fn cast_at(tokens: &[TokenWithSpan], at: usize) -> Option<(usize, usize)> {
    let is_cast = matches!(&tokens[at].token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("CAST"));
    if !is_cast || tokens.get(at + 1).map(|t| &t.token) != Some(&Token::LParen) {
        return None;
    }
    let mut depth = 0usize;
    let mut last_as = None;
    for (i, token) in tokens.iter().enumerate().skip(at + 2) {
        match &token.token {
            Token::LParen => depth += 1,
            Token::RParen if depth == 0 => return last_as.map(|a| (a, i)),
            Token::RParen => depth -= 1,
            Token::Word(w) if depth == 0 && w.quote_style.is_none() && w.value.eq_ignore_ascii_case("AS") => last_as = Some(i),
            _ => {}
        }
    }
    None
}

/// The type `tokens` spell, and whether it is a named one: none when they are not a column
/// type Sluice reads (sqlparser then reads or refuses them).
fn read_type(tokens: &[TokenWithSpan], types: &CustomTypes) -> Result<Option<(SqlType, bool)>> {
    let named = matches!(tokens, [TokenWithSpan { token: Token::Word(w), .. }] if types.contains_key(&w.value.to_ascii_uppercase()));
    let mut cursor = Cursor::new(tokens.to_vec()).with_types(types.clone());
    match parse_type(&mut cursor) {
        Ok(data_type) if cursor.at_end() => Ok(Some((data_type, named))),
        Err(e @ SluiceError::Plan(_)) if e.to_string().starts_with("Cannot resolve unknown type") => Err(e),
        _ => Ok(None),
    }
}

/// The tokens of a scalar type as written, placed at `at`.
fn type_tokens(data_type: &SqlType, at: sqlparser::tokenizer::Span) -> Result<Vec<TokenWithSpan>> {
    let written = data_type.to_string();
    let tokens = Tokenizer::new(&sqlparser::dialect::GenericDialect {}, &written)
        .tokenize()
        .map_err(|e| SluiceError::Internal(format!("the type {written} does not tokenize: {e}")))?;
    Ok(tokens
        .into_iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .map(|token| TokenWithSpan { token, span: at })
        .collect())
}

/// Reads a column type written out in full, as a `KSQL_CAST` names its target.
pub fn parse_column_type(text: &str) -> Result<SqlType> {
    let tokens = super::tokenize(text)?;
    let mut cursor = Cursor::new(tokens);
    let data_type = parse_type(&mut cursor)?;
    if !cursor.at_end() {
        return Err(cursor.error("the end of the type"));
    }
    Ok(data_type)
}
