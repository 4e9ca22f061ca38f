//! `KsqlDialect`: sqlparser's generic dialect with ksqlDB's lambdas, `x => body` and
//! `(x, y) => body`, which reach sqlparser as its `->` lambda arrow, and its identifiers that
//! start with digits.

use std::any::TypeId;

use sqlparser::{
    dialect::{Dialect, GenericDialect},
    keywords::Keyword,
    tokenizer::{Token, TokenWithSpan},
};

/// The generic dialect, with lambda functions and identifiers such as `1R`. Every other answer
/// is the generic dialect's, and the parser's checks for "is this the generic dialect" still hold.
#[derive(Debug, Default)]
pub struct KsqlDialect;

const GENERIC: GenericDialect = GenericDialect {};

/// Answers each named question as the generic dialect does.
macro_rules! as_generic {
    ($($question:ident),* $(,)?) => {
        $(fn $question(&self) -> bool { GENERIC.$question() })*
    };
}

impl Dialect for KsqlDialect {
    fn dialect(&self) -> TypeId {
        GENERIC.dialect()
    }

    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        GENERIC.is_delimited_identifier_start(ch)
    }

    fn is_identifier_start(&self, ch: char) -> bool {
        GENERIC.is_identifier_start(ch)
    }

    fn is_identifier_part(&self, ch: char) -> bool {
        GENERIC.is_identifier_part(ch)
    }

    fn supports_lambda_functions(&self) -> bool {
        true
    }

    /// ksqlDB's lexer reads a word that starts with digits (`1R`) as an identifier.
    fn supports_numeric_prefix(&self) -> bool {
        true
    }

    as_generic!(
        supports_unicode_string_literal, supports_partition_by_after_order_by, supports_array_join_syntax,
        supports_group_by_expr, supports_group_by_with_modifier, supports_left_associative_joins_without_parens,
        supports_connect_by, supports_match_recognize, supports_pipe_operator, supports_start_transaction_modifier,
        supports_window_function_null_treatment_arg, supports_dictionary_syntax,
        supports_window_clause_named_window_reference, supports_parenthesized_set_variables,
        supports_select_wildcard_except, support_map_literal_syntax, allow_extract_custom, allow_extract_single_quotes,
        supports_extract_comma_syntax, supports_create_view_comment_syntax, supports_parens_around_table_factor,
        supports_values_as_table_factor, supports_create_index_with_clause, supports_explain_with_utility_options,
        supports_limit_comma, supports_update_order_by, supports_from_first_select, supports_projection_trailing_commas,
        supports_asc_desc_in_column_definition, supports_try_convert, supports_bitwise_shift_operators,
        supports_comment_on, supports_load_extension, supports_named_fn_args_with_assignment_operator,
        supports_struct_literal, supports_empty_projections, supports_nested_comments, supports_multiline_comment_hints,
        supports_user_host_grantee, supports_string_escape_constant, supports_array_typedef_with_brackets,
        supports_match_against, supports_set_names, supports_comma_separated_set_assignments,
        supports_filter_during_aggregation, supports_select_wildcard_exclude, supports_data_type_signed_suffix,
        supports_interval_options, supports_quote_delimited_string, supports_select_wildcard_replace,
        supports_select_wildcard_ilike, supports_select_wildcard_rename, supports_optimize_table, supports_install,
        supports_detach, supports_prewhere, supports_with_fill, supports_limit_by, supports_interpolate,
        supports_settings, supports_select_format, supports_comment_optimizer_hint,
        supports_constraint_keyword_without_name, supports_key_column_option, supports_comma_separated_trim,
        supports_cte_without_as, supports_select_item_multi_column_alias, supports_xml_expressions,
    );
}

/// ksqlDB's lambda arrow `=>` as the `->` sqlparser reads a lambda by. Runs after the struct
/// field reads have taken every `->` of the text, so no arrow is read twice.
pub fn lambda_arrows(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    tokens
        .into_iter()
        .map(|t| match t.token {
            Token::RArrow => TokenWithSpan::new(Token::Arrow, t.span),
            _ => t,
        })
        .collect()
}

/// The words the generic dialect reads as functions called without parentheses (`USER`,
/// `CURRENT_USER`, …): ksqlDB has no such functions, so `i.user` is a column, as it is there.
pub fn niladic_words_as_names(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    const NILADIC: [Keyword; 4] = [Keyword::USER, Keyword::CURRENT_USER, Keyword::SESSION_USER, Keyword::CURRENT_CATALOG];
    tokens
        .into_iter()
        .map(|t| match t.token {
            Token::Word(mut word) if NILADIC.contains(&word.keyword) => {
                word.keyword = Keyword::NoKeyword;
                TokenWithSpan::new(Token::Word(word), t.span)
            }
            _ => t,
        })
        .collect()
}
