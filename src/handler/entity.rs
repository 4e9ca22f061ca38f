//! The ksqlDB entities `/ksql` answers with, shaped exactly as ksqlDB's REST model.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::{
    catalog::{QueryDef, SourceDef, SqlType},
    parser::SourceKind,
    connectors::kafka::TopicInfo,
    functions::listing::FunctionInfo,
    runtime::QueryStatus,
};

pub fn command_status(statement: &str, kind: &str, name: &str, message: &str, query_id: Option<&str>, seq: i64) -> Value {
    json!({
        "@type": "currentStatus",
        "statementText": statement,
        "commandId": format!("{kind}/`{name}`/create"),
        "commandStatus": {"status": "SUCCESS", "message": message, "queryId": query_id},
        "commandSequenceNumber": seq,
        "warnings": []
    })
}

pub fn command_done(statement: &str, command_id: String, message: &str, seq: i64) -> Value {
    json!({
        "@type": "currentStatus",
        "statementText": statement,
        "commandId": command_id,
        "commandStatus": {"status": "SUCCESS", "message": message, "queryId": null},
        "commandSequenceNumber": seq,
        "warnings": []
    })
}

/// ksqlDB's `WarningEntity`: the statement did nothing, and why.
pub fn warning(statement: &str, message: &str) -> Value {
    json!({"@type": "warning_entity", "statementText": statement, "message": message, "warnings": []})
}

/// ksqlDB's `VariablesList`.
pub fn variables(statement: &str, variables: &std::collections::BTreeMap<String, String>) -> Value {
    let list: Vec<Value> = variables.iter().map(|(name, value)| json!({"name": name, "value": value})).collect();
    json!({"@type": "variables", "statementText": statement, "variables": list, "warnings": []})
}

/// ksqlDB's `StreamsList` or `TablesList`.
pub fn sources(statement: &str, kind: SourceKind, sources: &[SourceDef]) -> Value {
    let list: Vec<Value> = sources
        .iter()
        .map(|s| json!({
            "type": kind.keyword(),
            "name": s.name,
            "topic": s.topic,
            "keyFormat": s.key_format.name(),
            "valueFormat": s.value_format.name(),
            "isWindowed": s.window.is_some()
        }))
        .collect();
    let plural = format!("{}s", kind.word());
    json!({"@type": plural, "statementText": statement, plural: list, "warnings": []})
}

pub fn topics(statement: &str, topics: &[TopicInfo]) -> Value {
    let list: Vec<Value> = topics
        .iter()
        .map(|t| json!({"name": t.name, "replicaInfo": vec![t.replicas; t.partitions as usize]}))
        .collect();
    json!({"@type": "kafka_topics", "statementText": statement, "topics": list, "warnings": []})
}

/// ksqlDB's `RunningQuery`, with Sluice's processing statistics.
/// ksqlDB's `RunningQuery`: how many servers run it in each state, and its state (the one
/// most servers show; UNKNOWN where no server alive says).
pub fn running_query(query: &QueryDef, states: &BTreeMap<String, String>) -> Value {
    let (counts, state) = state_counts(states);
    json!({
        "queryString": query.statement,
        "sinks": [query.sink],
        "sinkKafkaTopics": [query.sink_topic],
        "id": query.id,
        "statusCount": counts,
        "queryType": "PERSISTENT",
        "state": state
    })
}

/// The number of servers in each state, and the state most are in.
pub fn state_counts(states: &BTreeMap<String, String>) -> (BTreeMap<&str, usize>, &str) {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for state in states.values() {
        *counts.entry(state.as_str()).or_default() += 1;
    }
    if counts.is_empty() {
        counts.insert("UNKNOWN", 1);
    }
    let state = counts.iter().max_by_key(|(_, n)| **n).map_or("UNKNOWN", |(s, _)| *s);
    (counts, state)
}

pub fn queries(statement: &str, queries: &[(QueryDef, BTreeMap<String, String>)]) -> Value {
    let list: Vec<Value> = queries.iter().map(|(q, s)| running_query(q, s)).collect();
    json!({"@type": "queries", "statementText": statement, "queries": list, "warnings": []})
}

/// Processing statistics of a query in ksqlDB's `statistics`/`errorStats` text form, plus the
/// last error with where its record was.
pub fn query_statistics(status: &QueryStatus) -> (String, String) {
    let (records_in, records_out, errors) = status.counts();
    let statistics = format!("records-in: {records_in}, records-out: {records_out}");
    let mut error_stats = format!("processing-errors: {errors}");
    if let Some(last) = status.last_error() {
        error_stats.push_str(&format!(
            ", last-error: {} (topic {}, partition {}, offset {})",
            last.message, last.topic, last.partition, last.offset
        ));
    }
    if let crate::runtime::QueryState::Error(cause) = status.state() {
        error_stats.push_str(&format!(", state: ERROR: {cause}"));
    }
    (statistics, error_stats)
}

/// ksqlDB's `FunctionNameList`: every function's name, type and category.
pub fn function_names(statement: &str, functions: &[FunctionInfo]) -> Value {
    let list: Vec<Value> = functions
        .iter()
        .map(|f| json!({"name": f.name, "type": f.kind.name(), "category": f.category}))
        .collect();
    json!({"@type": "function_names", "statementText": statement, "functions": list, "warnings": []})
}

/// ksqlDB's `FunctionDescriptionList`: one function's description and a `FunctionInfo` per way
/// to call it, its documented arguments typed where the overload fixes their types.
pub fn function_description(statement: &str, function: &FunctionInfo) -> Value {
    let overloads: Vec<Value> = function
        .overloads
        .iter()
        .map(|overload| {
            let fixed = overload.argument_types.len() == function.arguments.len();
            let arguments: Vec<Value> = function
                .arguments
                .iter()
                .enumerate()
                .map(|(i, (name, description))| {
                    let data_type = if fixed { overload.argument_types[i].as_str() } else { "" };
                    json!({"name": name, "type": data_type, "description": description, "isVariadic": false})
                })
                .collect();
            json!({
                "arguments": arguments,
                "argumentTypes": overload.argument_types,
                "returnType": overload.return_type.clone().unwrap_or_default(),
                "description": function.syntax
            })
        })
        .collect();
    json!({
        "@type": "describe_function",
        "statementText": statement,
        "name": function.name,
        "description": function.description,
        "author": function.author,
        "version": env!("CARGO_PKG_VERSION"),
        "path": "internal",
        "functions": overloads,
        "type": function.kind.name(),
        "warnings": []
    })
}

/// ksqlDB's `FieldInfo` list of columns: name, schema, `KEY` on key columns and `HEADER` (with
/// its `headerKey` when it reads one header) on header columns.
pub fn fields(columns: &[crate::parser::ColumnDef]) -> Vec<Value> {
    columns
        .iter()
        .map(|c| {
            let mut field = json!({"name": c.name, "schema": schema_info(&c.data_type)});
            if c.key {
                field["type"] = json!("KEY");
            }
            match &c.header {
                Some(crate::parser::HeaderColumn::Key(key)) => {
                    field["type"] = json!("HEADER");
                    field["headerKey"] = json!(key);
                }
                Some(crate::parser::HeaderColumn::All) => field["type"] = json!("HEADER"),
                None => {}
            }
            field
        })
        .collect()
}

/// ksqlDB's `SchemaInfo` of a type: its base type, a STRUCT's fields, an ARRAY's element or a
/// MAP's value type, a DECIMAL's precision and scale.
pub fn schema_info(data_type: &SqlType) -> Value {
    let (base, fields, member) = match data_type {
        SqlType::Array(element) => ("ARRAY".to_string(), Value::Null, schema_info(element)),
        SqlType::Map(value) => ("MAP".to_string(), Value::Null, schema_info(value)),
        SqlType::Struct(fields) => {
            let fields = fields.iter().map(|(name, t)| json!({"name": name, "schema": schema_info(t)})).collect();
            ("STRUCT".to_string(), Value::Array(fields), Value::Null)
        }
        SqlType::Decimal { precision, scale } => {
            return json!({"type": "DECIMAL", "fields": null, "memberSchema": null, "parameters": {"precision": precision, "scale": scale}});
        }
        other => (other.to_string(), Value::Null, Value::Null),
    };
    json!({"type": base, "fields": fields, "memberSchema": member})
}

/// ksqlDB's `TypeList`: every type `CREATE TYPE` named, by name.
pub fn types(statement: &str, types: &crate::catalog::CustomTypes) -> Value {
    let types: serde_json::Map<String, Value> = types.iter().map(|(name, t)| (name.clone(), schema_info(t))).collect();
    json!({"@type": "type_list", "statementText": statement, "types": types, "warnings": []})
}
