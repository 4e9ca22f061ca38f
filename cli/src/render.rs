//! Shows the server's answers as the ksqlDB CLI does: aligned tables, or JSON.

use serde_json::Value;

/// Lays out rows under headers, every column as wide as its widest cell.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!(" {c:<w$} "))
            .collect();
        padded.join("|").trim_end().to_string()
    };
    let rule: String = widths.iter().map(|w| "-".repeat(w + 2)).collect::<Vec<_>>().join("-");
    let mut out = vec![line(headers.to_vec()), rule.clone()];
    for row in rows {
        out.push(line(row.iter().map(String::as_str).collect()));
    }
    out.push(rule);
    out.join("\n")
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// One entity of a `/ksql` answer, as a table where ksqlDB's CLI shows one.
pub fn entity(entity: &Value) -> String {
    match entity["@type"].as_str().unwrap_or_default() {
        "currentStatus" => table(&["Message"], &[vec![text(&entity["commandStatus"]["message"])]]),
        "streams" => {
            let rows: Vec<Vec<String>> = entity["streams"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| vec![text(&s["name"]), text(&s["topic"]), text(&s["keyFormat"]), text(&s["valueFormat"]), text(&s["isWindowed"])])
                .collect();
            table(&["Stream Name", "Kafka Topic", "Key Format", "Value Format", "Windowed"], &rows)
        }
        "queries" => {
            let rows: Vec<Vec<String>> = entity["queries"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|q| vec![text(&q["id"]), text(&q["queryType"]), text(&q["state"]), text(&q["sinks"][0]), text(&q["sinkKafkaTopics"][0]), text(&q["queryString"]).replace('\n', " ")])
                .collect();
            table(&["Query ID", "Query Type", "Status", "Sink Name", "Sink Kafka Topic", "Query String"], &rows)
        }
        "kafka_topics" => {
            let rows: Vec<Vec<String>> = entity["topics"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| {
                    let replicas = t["replicaInfo"].as_array().cloned().unwrap_or_default();
                    vec![text(&t["name"]), replicas.len().to_string(), replicas.iter().map(text).collect::<Vec<_>>().join(" ")]
                })
                .collect();
            table(&["Kafka Topic", "Partitions", "Partition Replicas"], &rows)
        }
        "sourceDescription" => describe(&entity["sourceDescription"]),
        "queryDescription" => describe_query(&entity["queryDescription"]),
        "function_names" => {
            let rows: Vec<Vec<String>> = entity["functions"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|f| vec![text(&f["name"]), text(&f["type"]), text(&f["category"])])
                .collect();
            table(&["Function Name", "Type", "Category"], &rows)
        }
        "describe_function" => describe_function(entity),
        "type_list" => {
            let rows: Vec<Vec<String>> = entity["types"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(name, schema)| vec![name.clone(), type_string(schema)])
                .collect();
            table(&["Type Name", "Schema"], &rows)
        }
        "source_descriptions" => entity["sourceDescriptions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(describe)
            .collect::<Vec<_>>()
            .join("\n\n"),
        "connector_list" => {
            let rows: Vec<Vec<String>> = entity["connectors"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| vec![text(&c["name"]), text(&c["type"]).to_uppercase(), text(&c["className"]), text(&c["state"])])
                .collect();
            table(&["Connector Name", "Type", "Class", "Status"], &rows)
        }
        "connector_description" => describe_connector(entity),
        "variables" => {
            let rows: Vec<Vec<String>> = entity["variables"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|v| vec![text(&v["name"]), text(&v["value"])])
                .collect();
            table(&["Variable Name", "Value"], &rows)
        }
        "warning_entity" => text(&entity["message"]),
        "connector_info" => table(&["Message"], &[vec![format!("Created connector {}", text(&entity["info"]["name"]))]]),
        "drop_connector" => table(&["Message"], &[vec![format!("Dropped connector \"{}\"", text(&entity["connectorName"]))]]),
        _ => serde_json::to_string_pretty(entity).unwrap_or_default(),
    }
}

/// A column type as ksqlDB's CLI prints a `SchemaInfo`: `VARCHAR(STRING)`, `ARRAY<INTEGER>`,
/// `STRUCT<A INTEGER>`, `DECIMAL(4, 2)`.
fn type_string(schema: &Value) -> String {
    let base = text(&schema["type"]);
    match base.as_str() {
        "STRING" => "VARCHAR(STRING)".into(),
        "ARRAY" => format!("ARRAY<{}>", type_string(&schema["memberSchema"])),
        "MAP" => format!("MAP<STRING, {}>", type_string(&schema["memberSchema"])),
        "STRUCT" => {
            let fields: Vec<String> = schema["fields"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|f| format!("{} {}", text(&f["name"]), type_string(&f["schema"])))
                .collect();
            format!("STRUCT<{}>", fields.join(", "))
        }
        "DECIMAL" => match (schema["parameters"].get("precision"), schema["parameters"].get("scale")) {
            (Some(precision), Some(scale)) => format!("DECIMAL({precision}, {scale})"),
            _ => base,
        },
        _ => base,
    }
}

fn describe(source: &Value) -> String {
    let is_table = source["type"] == "TABLE";
    let fields: Vec<Vec<String>> = source["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            // ksqlDB's CLI marks a table's key its primary key, and a header column the headers it reads.
            let key = match (f["type"].as_str(), is_table) {
                (Some("KEY"), true) => "  (primary key)".to_string(),
                (Some("KEY"), false) => "  (key)".to_string(),
                (Some("HEADER"), _) => match f["headerKey"].as_str() {
                    Some(header) => format!("  (header('{header}'))"),
                    None => "  (headers)".to_string(),
                },
                _ => String::new(),
            };
            vec![text(&f["name"]), format!("{}{key}", type_string(&f["schema"]))]
        })
        .collect();
    let mut out = format!(
        "Name                 : {}\nType                 : {}\nKafka topic          : {} (partitions: {}, replication: {})\nKey format           : {}\nValue format         : {}\n",
        text(&source["name"]),
        text(&source["type"]),
        text(&source["topic"]),
        text(&source["partitions"]),
        text(&source["replication"]),
        text(&source["keyFormat"]),
        text(&source["valueFormat"]),
    );
    out.push_str(&table(&["Field", "Type"], &fields));
    if source["extended"] == true {
        out.push_str(&format!(
            "\n\nStatistics           : {}\nErrors               : {}",
            text(&source["statistics"]),
            text(&source["errorStats"])
        ));
    }
    out
}

/// `DESCRIBE FUNCTION`: the function, then each way to call it.
fn describe_function(function: &Value) -> String {
    let mut out = format!(
        "Name        : {}\nAuthor      : {}\nVersion     : {}\nOverview    : {}\nType        : {}\n",
        text(&function["name"]),
        text(&function["author"]),
        text(&function["version"]),
        text(&function["description"]),
        text(&function["type"]),
    );
    for overload in function["functions"].as_array().into_iter().flatten() {
        let types: Vec<String> = overload["argumentTypes"].as_array().into_iter().flatten().map(text).collect();
        out.push_str(&format!(
            "\n\tVariation   : {}\n\tArguments   : {}\n\tReturns     : {}\n",
            text(&overload["description"]),
            types.join(", "),
            text(&overload["returnType"]),
        ));
    }
    out
}

/// `EXPLAIN`, laid out as ksqlDB's CLI lays it out.
fn describe_query(query: &Value) -> String {
    let fields: Vec<Vec<String>> = query["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| vec![text(&f["name"]), format!("{}{}", type_string(&f["schema"]), if f["type"] == "KEY" { "  (key)" } else { "" })])
        .collect();
    let names = |list: &Value| list.as_array().into_iter().flatten().map(text).collect::<Vec<_>>().join(", ");
    let mut out = String::new();
    if !text(&query["id"]).is_empty() {
        out.push_str(&format!("ID                   : {}\nQuery state          : {}\n", text(&query["id"]), text(&query["state"])));
    }
    out.push_str(&format!("Query type           : {}\nSQL                  : {}\n\n", text(&query["queryType"]), text(&query["statementText"])));
    out.push_str(&table(&["Field", "Type"], &fields));
    out.push_str(&format!(
        "\n\nSources that this query reads from: {}\nSinks that this query writes to: {}\n\nExecution plan\n--------------\n{}\nProcessing topology\n-------------------\n{}",
        names(&query["sources"]),
        names(&query["sinks"]),
        text(&query["executionPlan"]),
        text(&query["topology"]),
    ));
    out
}

/// The horizontal rule above and below streamed rows.
pub fn rule(widths: &[usize]) -> String {
    format!("+{}+", widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("+"))
}

/// A row of a push query, aligned under the column names.
pub fn row(cells: &[Value], widths: &[usize]) -> String {
    let padded: Vec<String> = cells
        .iter()
        .zip(widths)
        .map(|(c, w)| format!("{:<w$}", text(c)))
        .collect();
    format!("|{}|", padded.join("|"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_streams_is_an_aligned_table() {
        let entity = serde_json::json!({"@type": "streams", "streams": [
            {"name": "SENSOR_ID_3", "topic": "SENSOR_ID_3", "keyFormat": "KAFKA", "valueFormat": "JSON", "isWindowed": false}
        ]});
        assert_eq!(
            entity_lines(&entity),
            vec![
                " Stream Name | Kafka Topic | Key Format | Value Format | Windowed",
                "------------------------------------------------------------------",
                " SENSOR_ID_3 | SENSOR_ID_3 | KAFKA      | JSON         | false",
                "------------------------------------------------------------------",
            ]
        );
    }

    #[test]
    fn explain_shows_the_query_its_fields_and_its_plan() {
        let entity = serde_json::json!({"@type": "queryDescription", "queryDescription": {
            "id": "CSAS_S_1", "state": "PAUSED", "queryType": "PERSISTENT", "statementText": "CREATE STREAM S AS SELECT * FROM T;",
            "fields": [{"name": "ID", "schema": {"type": "STRING"}, "type": "KEY"}],
            "sources": ["T"], "sinks": ["S"],
            "executionPlan": " > [ SINK ] | Topic: S\n\t\t > [ SOURCE ] | Topic: T\n", "topology": "Scan of topic T"
        }});
        let text = entity_lines(&entity);
        assert_eq!(text[0], "ID                   : CSAS_S_1");
        assert_eq!(text[1], "Query state          : PAUSED");
        assert!(text.contains(&" ID    | VARCHAR(STRING)  (key)".to_string()), "{text:#?}");
        assert!(text.contains(&"Sources that this query reads from: T".to_string()), "{text:#?}");
        assert!(text.contains(&"\t\t > [ SOURCE ] | Topic: T".to_string()), "{text:#?}");
    }

    #[test]
    fn show_types_prints_each_type_as_ksqldb_writes_it() {
        let entity = serde_json::json!({"@type": "type_list", "types": {
            "ADDRESS": {"type": "STRUCT", "fields": [
                {"name": "NUMBER", "schema": {"type": "INTEGER", "fields": null, "memberSchema": null}},
                {"name": "TAGS", "schema": {"type": "ARRAY", "fields": null, "memberSchema": {"type": "STRING", "fields": null, "memberSchema": null}}}
            ], "memberSchema": null},
            "MONEY": {"type": "DECIMAL", "fields": null, "memberSchema": null, "parameters": {"precision": 10, "scale": 2}}
        }});
        let text = entity_lines(&entity);
        assert_eq!(text[0], " Type Name | Schema");
        assert_eq!(text[2], " ADDRESS   | STRUCT<NUMBER INTEGER, TAGS ARRAY<VARCHAR(STRING)>>");
        assert_eq!(text[3], " MONEY     | DECIMAL(10, 2)");
    }

    fn entity_lines(value: &Value) -> Vec<String> {
        entity(value).lines().map(str::to_string).collect()
    }
}

/// `DESCRIBE CONNECTOR`: the connector, its task, and each partition's progress.
fn describe_connector(entity: &Value) -> String {
    let status = &entity["status"];
    let task = &status["tasks"][0];
    let mut out = format!(
        "Name                 : {}\nClass                : {}\nType                 : {}\nState                : {}\nWorkerId             : {}\nTask state           : {}\n",
        text(&status["name"]),
        text(&entity["connectorClass"]),
        text(&status["type"]),
        text(&status["connector"]["state"]),
        text(&status["connector"]["worker_id"]),
        text(&task["state"]),
    );
    if !task["trace"].is_null() {
        out.push_str(&format!("Trace                : {}\n", text(&task["trace"])));
    }
    out.push_str(&format!("Skipped records      : {}\n", text(&status["skippedRecords"])));
    let rows: Vec<Vec<String>> = status["progress"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            ["topic", "partition", "committedOffset", "lag", "files", "bytes", "records"]
                .iter()
                .map(|k| text(&p[*k]))
                .collect()
        })
        .collect();
    out.push('\n');
    out.push_str(&table(&["Topic", "Partition", "Committed", "Lag", "Files", "Bytes", "Records"], &rows));
    out
}
