//! A cursor over one SQL text's tokens that skips whitespace and reports errors in plain words.

use sqlparser::{
    parser::{Parser, ParserError},
    tokenizer::{Token, TokenWithSpan, Whitespace},
};

use crate::{
    catalog::types::CustomTypes,
    error::{Location, ParseError, SluiceError},
};

pub struct Cursor {
    tokens: Vec<TokenWithSpan>,
    pos: usize,
    /// The types `CREATE TYPE` has named, which a column type may name.
    types: CustomTypes,
}

impl Cursor {
    pub fn new(tokens: Vec<TokenWithSpan>) -> Self {
        let tokens = tokens
            .into_iter()
            .filter(|t| !matches!(t.token, Token::Whitespace(_)))
            .collect();
        Self { tokens, pos: 0, types: CustomTypes::new() }
    }

    /// The same cursor, resolving the type names of `types`.
    pub fn with_types(mut self, types: CustomTypes) -> Self {
        self.types = types;
        self
    }

    /// The types a column type may name.
    pub fn types(&self) -> &CustomTypes {
        &self.types
    }

    pub fn types_mut(&mut self) -> &mut CustomTypes {
        &mut self.types
    }

    pub fn peek(&self) -> Option<&TokenWithSpan> {
        self.tokens.get(self.pos)
    }

    pub fn peek_nth(&self, n: usize) -> Option<&TokenWithSpan> {
        self.tokens.get(self.pos + n)
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.tokens.len()
    }

    pub fn advance(&mut self) -> Option<TokenWithSpan> {
        let token = self.tokens.get(self.pos).cloned();
        self.pos += usize::from(token.is_some());
        token
    }

    pub fn previous_is(&self, token: &Token) -> bool {
        self.pos > 0 && self.tokens[self.pos - 1].token == *token
    }

    /// Where the next token starts (or the end of the text).
    pub fn location(&self) -> Location {
        match self.peek() {
            Some(t) => to_location(t.span.start),
            None => self.end_location(),
        }
    }

    /// Where the last consumed token ends.
    pub fn end_location(&self) -> Location {
        self.pos
            .checked_sub(1)
            .and_then(|i| self.tokens.get(i))
            .map(|t| to_location(t.span.end))
            .unwrap_or(Location { line: 1, column: 1 })
    }

    /// The next token as an upper-cased unquoted word, if it is one.
    pub fn peek_word(&self) -> Option<String> {
        word_of(self.peek()?)
    }

    pub fn peek_word_is(&self, word: &str) -> bool {
        self.peek_word().is_some_and(|w| w == word)
    }

    /// Consumes the next token when it is the unquoted word `word` (any case).
    pub fn eat_word(&mut self, word: &str) -> bool {
        if self.peek_word_is(word) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Consumes the words in order, or none of them.
    pub fn eat_words(&mut self, words: &[&str]) -> bool {
        let matches = words
            .iter()
            .enumerate()
            .all(|(i, w)| self.peek_nth(i).and_then(word_of).is_some_and(|x| x == *w));
        if matches {
            self.pos += words.len();
        }
        matches
    }

    pub fn expect_word(&mut self, word: &str) -> Result<(), SluiceError> {
        if self.eat_word(word) {
            Ok(())
        } else {
            Err(self.error(word))
        }
    }

    pub fn eat(&mut self, token: &Token) -> bool {
        if self.peek().is_some_and(|t| t.token == *token) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub fn expect(&mut self, token: &Token, described: &str) -> Result<(), SluiceError> {
        if self.eat(token) {
            Ok(())
        } else {
            Err(self.error(described))
        }
    }

    /// Consumes one `>` closing a type's angle brackets; `>>` (which the tokenizer reads as one
    /// shift) closes two nested ones, so its first half is taken and a `>` left.
    pub fn close_angle(&mut self, described: &str) -> Result<(), SluiceError> {
        match self.peek().map(|t| &t.token) {
            Some(Token::Gt) => {
                self.pos += 1;
                Ok(())
            }
            Some(Token::ShiftRight) => {
                let rest = &mut self.tokens[self.pos];
                rest.token = Token::Gt;
                rest.span.start.column += 1;
                Ok(())
            }
            _ => Err(self.error(described)),
        }
    }

    /// An identifier, normalised the ksqlDB way.
    pub fn identifier(&mut self, what: &str) -> Result<String, SluiceError> {
        match self.peek().map(|t| &t.token) {
            Some(Token::Word(w)) => {
                let name = if w.quote_style.is_some() {
                    w.value.clone()
                } else {
                    w.value.to_ascii_uppercase()
                };
                self.pos += 1;
                Ok(name)
            }
            _ => Err(self.error(what)),
        }
    }

    pub fn string_literal(&mut self, what: &str) -> Result<String, SluiceError> {
        match self.peek().map(|t| &t.token) {
            Some(Token::SingleQuotedString(s)) => {
                let s = s.clone();
                self.pos += 1;
                Ok(s)
            }
            _ => Err(self.error(what)),
        }
    }

    pub fn number(&mut self, what: &str) -> Result<u64, SluiceError> {
        match self.peek().map(|t| &t.token) {
            Some(Token::Number(n, _)) => match n.parse() {
                Ok(value) => {
                    self.pos += 1;
                    Ok(value)
                }
                Err(_) => Err(self.error(what)),
            },
            _ => Err(self.error(what)),
        }
    }

    /// The tokens up to the end of the statement (a `;` outside parentheses), consumed.
    pub fn rest_of_statement(&mut self) -> Vec<TokenWithSpan> {
        let start = self.pos;
        let mut depth = 0i32;
        while let Some(t) = self.peek() {
            match t.token {
                Token::LParen => depth += 1,
                Token::RParen => depth -= 1,
                Token::SemiColon if depth <= 0 => break,
                _ => {}
            }
            self.pos += 1;
        }
        self.tokens[start..self.pos].to_vec()
    }

    /// A parse error at the next token: `expected` is said in words.
    pub fn error(&self, expected: &str) -> SluiceError {
        SluiceError::Parse(ParseError {
            location: self.location(),
            found: describe(self.peek()),
            expected: expected.to_string(),
        })
    }
}

/// Runs a sqlparser production over a slice of tokens, which it must consume entirely.
pub fn with_sqlparser<T>(
    tokens: Vec<TokenWithSpan>,
    production: impl FnOnce(&mut Parser) -> Result<T, ParserError>,
) -> Result<T, SluiceError> {
    let dialect = super::dialect::KsqlDialect;
    let end = tokens.last().map(|t| t.span.end);
    let mut parser = Parser::new(&dialect).with_tokens_with_locations(tokens);
    let value = production(&mut parser).map_err(|e| from_sqlparser(e, end))?;
    let next = parser.peek_token();
    if next.token != Token::EOF {
        return Err(SluiceError::Parse(ParseError {
            location: to_location(next.span.start),
            found: describe(Some(&next)),
            expected: "the end of the statement".into(),
        }));
    }
    Ok(value)
}

/// Rewords sqlparser's `Expected: X, found: Y at Line: L, Column: C`.
fn from_sqlparser(error: ParserError, end: Option<sqlparser::tokenizer::Location>) -> SluiceError {
    let message = match error {
        ParserError::ParserError(m) | ParserError::TokenizerError(m) => m,
        ParserError::RecursionLimitExceeded => {
            return SluiceError::Plan("the statement is nested too deeply".into());
        }
    };
    let (body, location) = match message.rsplit_once(" at Line: ") {
        Some((body, at)) => {
            let mut parts = at.split(", Column: ");
            let line = parts.next().and_then(|l| l.trim().parse().ok()).unwrap_or(1);
            let column = parts.next().and_then(|c| c.trim().parse().ok()).unwrap_or(1);
            (body.to_string(), Location { line, column })
        }
        None => (
            message.clone(),
            end.map(to_location).unwrap_or(Location { line: 1, column: 1 }),
        ),
    };
    let (expected, found) = match body.strip_prefix("Expected: ") {
        Some(rest) => match rest.rsplit_once(", found: ") {
            Some((expected, found)) => (expected.to_string(), found_words(found)),
            None => (rest.to_string(), "something else".to_string()),
        },
        None => (body.clone(), "something else".to_string()),
    };
    SluiceError::Parse(ParseError {
        location,
        found,
        expected,
    })
}

fn found_words(found: &str) -> String {
    if found == "EOF" {
        "the end of the statement".into()
    } else {
        format!("'{found}'")
    }
}

fn word_of(token: &TokenWithSpan) -> Option<String> {
    match &token.token {
        Token::Word(w) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
        _ => None,
    }
}

fn describe(token: Option<&TokenWithSpan>) -> String {
    match token.map(|t| &t.token) {
        None | Some(Token::EOF) => "the end of the statement".into(),
        Some(Token::SemiColon) => "';'".into(),
        Some(Token::Whitespace(Whitespace::Newline)) => "a line break".into(),
        Some(t) => format!("'{t}'"),
    }
}

pub fn to_location(l: sqlparser::tokenizer::Location) -> Location {
    Location {
        line: l.line,
        column: l.column,
    }
}
