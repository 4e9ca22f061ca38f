//! Connectors as the catalog knows them: a name, a kind, and Kafka Connect's string config.

use std::collections::BTreeMap;

use crate::parser::ConnectorKind;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorDef {
    pub name: String,
    pub kind: ConnectorKind,
    /// The config as given, `connector.class` included, `name` excluded.
    pub config: BTreeMap<String, String>,
}

impl ConnectorDef {
    pub fn class(&self) -> &str {
        self.config.get("connector.class").map_or("", String::as_str)
    }

    /// The topics the config names: a sink's `topics` (or the pattern `topics.regex`), a text
    /// source's `topic` (Flume's `kafka.topic`).
    pub fn topics(&self) -> Vec<String> {
        let single = self.config.get("topic").or_else(|| self.config.get("kafka.topic"));
        match (self.config.get("topics"), self.config.get("topics.regex"), single) {
            (Some(list), _, _) => list.split(',').map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect(),
            (None, Some(pattern), _) => vec![pattern.clone()],
            (None, None, Some(topic)) => vec![topic.clone()],
            (None, None, None) => Vec::new(),
        }
    }
}
