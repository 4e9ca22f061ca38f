//! ksqlDB's JSON paths (`$.a["b"][0]`) and a scan that finds one path's value in a document
//! without building it: every other value is skipped, but the whole document is still checked.

use std::{borrow::Cow, fmt};

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Step {
    Field(String),
    Index(usize),
}

/// Parses a path as ksqlDB's `JsonPathTokenizer` does: `$`, `.name`, `["name"]`, `[0]`, `.0`.
pub fn parse_path(path: &str) -> Result<Vec<Step>, String> {
    let invalid = |why: &str| format!("Invalid JSON path: '{path}': {why}");
    let rest = path
        .trim()
        .strip_prefix('$')
        .ok_or_else(|| invalid("it must start with '$'"))?;
    let chars: Vec<char> = rest.chars().collect();
    let mut steps = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '.' => {
                let start = i + 1;
                let mut end = start;
                while end < chars.len() && chars[end] != '.' && chars[end] != '[' {
                    end += 1;
                }
                let name: String = chars[start..end].iter().collect();
                if name.is_empty() {
                    return Err(invalid("a '.' must be followed by a name"));
                }
                if name == "*" {
                    return Err(invalid("wildcards are not supported"));
                }
                steps.push(match name.parse::<usize>() {
                    Ok(index) => Step::Index(index),
                    Err(_) => Step::Field(name),
                });
                i = end;
            }
            '[' => {
                let close = chars[i..]
                    .iter()
                    .position(|c| *c == ']')
                    .map(|p| p + i)
                    .ok_or_else(|| invalid("'[' is not closed"))?;
                let inner: String = chars[i + 1..close].iter().collect();
                let inner = inner.trim();
                let quoted = inner
                    .strip_prefix('"')
                    .and_then(|s| s.strip_suffix('"'))
                    .or_else(|| inner.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')));
                steps.push(match quoted {
                    Some(name) => Step::Field(name.to_string()),
                    None => Step::Index(
                        inner
                            .parse()
                            .map_err(|_| invalid("an index must be a non-negative whole number"))?,
                    ),
                });
                i = close + 1;
            }
            _ => return Err(invalid("expected '.' or '['")),
        }
    }
    Ok(steps)
}

/// Why a document gave no value.
#[derive(Debug, PartialEq, Eq)]
pub enum ScanError {
    /// The document is not valid JSON.
    Invalid(String),
}

/// Finds the raw JSON text at `path` in `document`; `Ok(None)` when the path is missing.
pub fn find<'a>(document: &'a str, path: &[Step]) -> Result<Option<&'a RawValue>, ScanError> {
    let mut found = None;
    let mut deserializer = serde_json::Deserializer::from_str(document);
    PathSeed {
        path,
        found: &mut found,
    }
    .deserialize(&mut deserializer)
    .and_then(|_| deserializer.end())
    .map_err(|e| ScanError::Invalid(e.to_string()))?;
    Ok(found)
}

/// Renders a found value as ksqlDB does: a string unquoted, anything else as compact JSON.
pub fn render(raw: &RawValue) -> Cow<'_, str> {
    let text = raw.get();
    if text.starts_with('"') {
        let inner = &text[1..text.len() - 1];
        if !inner.contains('\\') {
            return Cow::Borrowed(inner);
        }
        return serde_json::from_str::<String>(text).map_or(Cow::Borrowed(inner), Cow::Owned);
    }
    if text.bytes().any(|b| b.is_ascii_whitespace()) {
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
            return Cow::Owned(value.to_string());
        }
    }
    Cow::Borrowed(text)
}

struct PathSeed<'p, 'f, 'de> {
    path: &'p [Step],
    found: &'f mut Option<&'de RawValue>,
}

impl<'de> DeserializeSeed<'de> for PathSeed<'_, '_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        if self.path.is_empty() {
            *self.found = Some(<&RawValue as de::Deserialize>::deserialize(deserializer)?);
            Ok(())
        } else {
            deserializer.deserialize_any(self)
        }
    }
}

impl<'de> Visitor<'de> for PathSeed<'_, '_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let wanted: Cow<str> = match &self.path[0] {
            Step::Field(name) => Cow::Borrowed(name),
            Step::Index(i) => Cow::Owned(i.to_string()),
        };
        let mut seed = Some(PathSeed {
            path: &self.path[1..],
            found: self.found,
        });
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key == wanted {
                if let Some(seed) = seed.take() {
                    map.next_value_seed(seed)?;
                    continue;
                }
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let wanted = match self.path[0] {
            Step::Index(i) => Some(i),
            Step::Field(_) => None,
        };
        let mut seed = Some(PathSeed {
            path: &self.path[1..],
            found: self.found,
        });
        let mut index = 0;
        loop {
            if Some(index) == wanted {
                if let Some(seed) = seed.take() {
                    if seq.next_element_seed(seed)?.is_none() {
                        break;
                    }
                    index += 1;
                    continue;
                }
            }
            if seq.next_element::<IgnoredAny>()?.is_none() {
                break;
            }
            index += 1;
        }
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extract(document: &str, path: &str) -> Result<Option<String>, ScanError> {
        let steps = parse_path(path).unwrap();
        find(document, &steps).map(|raw| raw.map(|r| render(r).into_owned()))
    }

    #[test]
    fn a_number_comes_back_as_its_text_and_a_string_unquoted() {
        let doc = r#"{"sensor_id": 3, "unit": "MW", "n": 1.23450}"#;
        assert_eq!(extract(doc, "$.sensor_id").unwrap().as_deref(), Some("3"));
        assert_eq!(extract(doc, "$.unit").unwrap().as_deref(), Some("MW"));
        assert_eq!(extract(doc, "$.n").unwrap().as_deref(), Some("1.23450"));
    }

    #[test]
    fn nested_objects_arrays_and_quoted_names() {
        let doc = r#"{"a": {"b c": [10, {"d": [1, 2]}]}}"#;
        assert_eq!(extract(doc, r#"$.a["b c"][1].d"#).unwrap().as_deref(), Some("[1,2]"));
        assert_eq!(extract(doc, r#"$.a["b c"].0"#).unwrap().as_deref(), Some("10"));
        assert_eq!(extract(doc, "$.a").unwrap().as_deref(), Some(r#"{"b c":[10,{"d":[1,2]}]}"#));
    }

    #[test]
    fn a_missing_path_is_none_and_invalid_json_is_an_error() {
        assert_eq!(extract(r#"{"a": 1}"#, "$.b").unwrap(), None);
        assert_eq!(extract(r#"[1]"#, "$.b").unwrap(), None);
        assert!(extract(r#"{"a": 1, oops}"#, "$.a").is_err());
        assert!(extract(r#"{"a": 1} trailing"#, "$.a").is_err());
    }

    #[test]
    fn escaped_strings_are_unescaped() {
        assert_eq!(
            extract(r#"{"s": "say \"hi\""}"#, "$.s").unwrap().as_deref(),
            Some(r#"say "hi""#)
        );
    }

    #[test]
    fn wildcards_and_malformed_paths_are_rejected() {
        assert!(parse_path("$.*").is_err());
        assert!(parse_path("a.b").is_err());
        assert!(parse_path("$[x]").is_err());
        assert!(parse_path("$.a[").is_err());
    }
}
