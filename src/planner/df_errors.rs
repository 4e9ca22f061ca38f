//! DataFusion's planning errors about function calls, in ksqlDB's words.

use std::str::FromStr;

use arrow::datatypes::DataType;

use crate::catalog::types::SqlType;

/// ksqlDB's text for a DataFusion planning error `message` about a function call it words
/// differently: a function no one registered, or arguments no signature of it takes.
pub fn ksql_text(message: &str) -> Option<String> {
    if let Some(name) = between(message, "Invalid function '", "'") {
        return Some(format!("Can't find any functions with the name '{}'", name.to_uppercase()));
    }
    if let Some(name) = between(message, "Failed to coerce arguments to satisfy a call to '", "' function") {
        let arguments = between(message, "coercion from ", " to the signature")?;
        return Some(refused_arguments(name, &sql_types(arguments)?));
    }
    let name = between(message, "Function '", "' user-defined coercion failed")?;
    ["called without any arguments", "must have at least one argument"]
        .iter()
        .any(|no_arguments| message.contains(no_arguments))
        .then(|| refused_arguments(name, ""))
}

/// ksqlDB's refusal of a call of `name` with arguments of the types `arguments` lists.
fn refused_arguments(name: &str, arguments: &str) -> String {
    format!("Function '{name}' does not accept parameters ({arguments}).")
}

/// The text of `message` between the first `start` and the `end` after it.
fn between<'a>(message: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = message.find(start)? + start.len();
    let to = message[from..].find(end)? + from;
    Some(&message[from..to])
}

/// DataFusion's list of argument types (`Float64, Utf8`) as ksqlDB lists them (`DOUBLE,
/// STRING`); `None` when one is not a type ksqlDB has.
fn sql_types(arguments: &str) -> Option<String> {
    arguments
        .split(", ")
        .map(|text| match DataType::from_str(text).ok()? {
            DataType::Null => Some("null".to_string()),
            data_type => SqlType::from_arrow(&data_type).ok().map(|t| t.to_string()),
        })
        .collect::<Option<Vec<_>>>()
        .map(|types| types.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_function_is_named_as_ksqldb_names_it() {
        assert_eq!(
            ksql_text("Invalid function 'wont_find_me'.\nDid you mean 'contains'?").as_deref(),
            Some("Can't find any functions with the name 'WONT_FIND_ME'")
        );
    }

    #[test]
    fn arguments_no_signature_takes_are_listed_in_ksqldb_types() {
        let message = "Failed to coerce arguments to satisfy a call to 'geo_distance' function: coercion from Float64, Float64, Utf8, Int64 to the signature OneOf(Exact(Float64, Float64, Float64, Float64)) failed.";
        assert_eq!(
            ksql_text(message).as_deref(),
            Some("Function 'geo_distance' does not accept parameters (DOUBLE, DOUBLE, STRING, BIGINT).")
        );
    }

    #[test]
    fn a_call_without_arguments_is_refused_with_an_empty_list() {
        let message = "Function 'greatest' user-defined coercion failed with: Error during planning: greatest was called without any arguments. It requires at least 1.";
        assert_eq!(ksql_text(message).as_deref(), Some("Function 'greatest' does not accept parameters ()."));
    }

    #[test]
    fn other_errors_keep_their_words() {
        assert_eq!(ksql_text("Schema error: No field named X."), None);
        assert_eq!(ksql_text("Failed to coerce arguments to satisfy a call to 'f' function: coercion from Struct(\"A\": Int32, \"B\": Utf8) to the signature Any failed."), None);
    }
}
