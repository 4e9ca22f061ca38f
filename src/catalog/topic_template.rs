//! A topic named per record: `KAFKA_TOPIC = 'SENSOR_ID_{SENSOR}'` names, for each output row,
//! the topic its `SENSOR` column's value completes. `{NAME}` is a column of the query's output
//! (matched ignoring case, as ksqlDB matches unquoted names); `${name}` remains variable
//! substitution, done before a statement is parsed.

use regex::Regex;

use crate::error::{Result, SluiceError};

/// Kafka's limit on a topic name's length.
const MAX_TOPIC_LENGTH: usize = 249;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Column(String),
}

/// A topic name with columns to fill in.
#[derive(Debug, Clone)]
pub struct TopicTemplate {
    parts: Vec<Part>,
    pattern: Regex,
}

impl TopicTemplate {
    /// The template in `topic`, or `None` when it names one topic.
    pub fn parse(topic: &str) -> Result<Option<TopicTemplate>> {
        if !topic.contains('{') && !topic.contains('}') {
            return Ok(None);
        }
        let mut parts = Vec::new();
        let mut rest = topic;
        while !rest.is_empty() {
            match rest.find(['{', '}']) {
                Some(at) if rest.as_bytes()[at] == b'{' => {
                    if at > 0 {
                        parts.push(Part::Text(rest[..at].to_string()));
                    }
                    let close = rest[at..].find('}').ok_or_else(|| bad(topic, "a '{' has no closing '}'"))?;
                    let name = rest[at + 1..at + close].trim();
                    if name.is_empty() || name.contains('{') {
                        return Err(bad(topic, "each '{…}' must hold one column name"));
                    }
                    parts.push(Part::Column(name.to_ascii_uppercase()));
                    rest = &rest[at + close + 1..];
                }
                Some(_) => return Err(bad(topic, "a '}' has no opening '{'")),
                None => {
                    parts.push(Part::Text(rest.to_string()));
                    rest = "";
                }
            }
        }
        for part in &parts {
            if let Part::Text(text) = part
                && !text.bytes().all(legal)
            {
                return Err(bad(topic, "a topic name holds only letters, digits, '.', '_' and '-'"));
            }
        }
        let pattern = parts
            .iter()
            .map(|p| match p {
                Part::Text(text) => regex::escape(text),
                Part::Column(_) => "[A-Za-z0-9._-]+".to_string(),
            })
            .collect::<String>();
        let pattern = Regex::new(&format!("^{pattern}$")).map_err(|e| bad(topic, &e.to_string()))?;
        Ok(Some(TopicTemplate { parts, pattern }))
    }

    /// The columns the template reads, in order.
    pub fn columns(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Column(name) => Some(name.as_str()),
            Part::Text(_) => None,
        })
    }

    /// Whether `topic` is a name the template can give.
    pub fn matches(&self, topic: &str) -> bool {
        self.pattern.is_match(topic)
    }

    /// Writes the topic name for one row into `out`, taking each column's value, in order, from
    /// `value`; the reason when a value is missing or cannot be part of a topic name.
    pub fn render(&self, mut value: impl FnMut(usize, &mut Vec<u8>) -> bool, out: &mut Vec<u8>) -> Result<(), String> {
        out.clear();
        let mut column = 0;
        for part in &self.parts {
            match part {
                Part::Text(text) => out.extend_from_slice(text.as_bytes()),
                Part::Column(name) => {
                    let start = out.len();
                    if !value(column, out) {
                        return Err(format!("the topic for this row cannot be named: {name} is NULL"));
                    }
                    let written = &out[start..];
                    if written.is_empty() || !written.iter().copied().all(legal) {
                        return Err(format!(
                            "the topic for this row cannot be named: {name} is '{}', and a topic name holds only letters, digits, '.', '_' and '-'",
                            String::from_utf8_lossy(written)
                        ));
                    }
                    column += 1;
                }
            }
        }
        if out.len() > MAX_TOPIC_LENGTH || out == b"." || out == b".." {
            return Err(format!(
                "the topic for this row cannot be named: '{}' is not a legal topic name",
                String::from_utf8_lossy(out)
            ));
        }
        Ok(())
    }
}

fn legal(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-')
}

fn bad(topic: &str, why: &str) -> SluiceError {
    SluiceError::Plan(format!("Invalid KAFKA_TOPIC '{topic}': {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(template: &TopicTemplate, values: &[Option<&str>]) -> Result<String, String> {
        let mut out = Vec::new();
        template.render(
            |i, out| match values[i] {
                Some(v) => {
                    out.extend_from_slice(v.as_bytes());
                    true
                }
                None => false,
            },
            &mut out,
        )?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn a_plain_topic_is_no_template() {
        assert!(TopicTemplate::parse("SENSOR_ID_3").unwrap().is_none());
    }

    #[test]
    fn columns_are_filled_in_per_row() {
        let template = TopicTemplate::parse("SENSOR_ID_{sensor}").unwrap().unwrap();
        assert_eq!(template.columns().collect::<Vec<_>>(), vec!["SENSOR"]);
        assert_eq!(render(&template, &[Some("3")]).unwrap(), "SENSOR_ID_3");
        let two = TopicTemplate::parse("{SITE}.{SENSOR}-raw").unwrap().unwrap();
        assert_eq!(render(&two, &[Some("north"), Some("12")]).unwrap(), "north.12-raw");
        assert!(template.matches("SENSOR_ID_42") && !template.matches("SENSOR_ID_") && !template.matches("OTHER_3"));
    }

    #[test]
    fn a_value_that_cannot_name_a_topic_is_refused_with_the_reason() {
        let template = TopicTemplate::parse("SENSOR_ID_{SENSOR}").unwrap().unwrap();
        assert!(render(&template, &[None]).unwrap_err().contains("SENSOR is NULL"));
        assert!(render(&template, &[Some("a/b")]).unwrap_err().contains("'a/b'"));
        assert!(render(&template, &[Some("")]).is_err());
        assert!(render(&template, &[Some(&"x".repeat(300))]).is_err());
    }

    #[test]
    fn malformed_templates_are_refused() {
        for topic in ["A_{", "A_{}", "A}", "A B_{C}"] {
            assert!(TopicTemplate::parse(topic).is_err(), "{topic}");
        }
    }
}
