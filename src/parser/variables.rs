//! `${name}` references to variables (`DEFINE`, a request's `sessionVariables`), replaced in a
//! statement's text before it is parsed, as ksqlDB does.

use std::collections::BTreeMap;

/// `text` with each `${name}` of a defined variable (any case) replaced by its value; a
/// reference to an undefined one stays as written.
pub fn substitute(text: &str, variables: &BTreeMap<String, String>) -> String {
    if variables.is_empty() || !text.contains("${") {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let reference = &rest[at..];
        let Some(end) = reference.find('}') else {
            out.push_str(reference);
            return out;
        };
        let name = &reference[2..end];
        match variables.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
            Some((_, value)) => out.push_str(value),
            None => out.push_str(&reference[..=end]),
        }
        rest = &reference[end + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_replaced_ignoring_case_and_unknown_ones_are_kept() {
        let variables = BTreeMap::from([("topic".to_string(), "INGESTION".to_string()), ("ID".into(), "3".into())]);
        assert_eq!(
            substitute("CREATE STREAM S_${id} WITH (KAFKA_TOPIC='${TOPIC}') AS SELECT '${other}', '${' FROM X;", &variables),
            "CREATE STREAM S_3 WITH (KAFKA_TOPIC='INGESTION') AS SELECT '${other}', '${' FROM X;"
        );
        assert_eq!(substitute("no references", &variables), "no references");
    }
}
