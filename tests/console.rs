//! The web console in a real headless Chromium, used as a person would: the PowerGrid
//! walkthrough from the ingestion stream to files in a real HDFS, done in the console alone —
//! statements typed in its SQL editor, records produced and found in its topic browser, the
//! six routing queries and their sinks in its flow graph, a failing query's last bad record, a
//! push query showing a row produced while it runs until it is stopped, the sink's committed
//! files and a file's first lines. Screenshots of each step are saved under the tests' output
//! folder (`console-screenshots/`).

mod common;

use std::time::Duration;

use common::{
    CREATE_INGESTION, SluiceServer, TestBroker,
    create_ingestion_topic,
    browser::{Browser, Scheme},
    hdfs::HdfsCluster,
    powergrid_record, produce, producer,
};

const SENSORS: u32 = 6;

fn routing_statements() -> String {
    (1..=SENSORS)
        .map(|id| format!("CREATE STREAM SENSOR_ID_{id} AS SELECT * FROM STREAM_INGESTION WHERE EXTRACTJSONFIELD(PAYLOAD, '$.sensor_id') = '{id}';\n"))
        .collect()
}

fn sink_statement(hdfs_url: &str) -> String {
    format!(
        "CREATE SINK CONNECTOR GRID_HDFS WITH ('connector.class' = 'io.confluent.connect.hdfs.HdfsSinkConnector', \
         'topics.regex' = 'SENSOR_ID_[1-6]', 'hdfs.url' = '{hdfs_url}', 'flush.size' = '1', 'topics.dir' = '/grid-wattage', \
         'format.class' = 'io.confluent.connect.hdfs.json.JsonFormat', \
         'value.converter' = 'org.apache.kafka.connect.json.JsonConverter', 'value.converter.schemas.enable' = 'false');"
    )
}

/// Runs the editor's text and waits for each statement's answer.
async fn run_in_editor(browser: &Browser, server: &SluiceServer, sql: &str, answers: usize) {
    browser.open(&format!("{}/#sql", server.url)).await;
    browser.type_into("#sql-editor", sql).await;
    browser.click("#sql-run").await;
    let shown = browser.all_until("#sql-results .panel", answers).await;
    assert!(browser.client.find(fantoccini::Locator::Css("#sql-error")).await.is_err(), "{shown:?}");
}

/// Produces one record from the topic browser's form and waits for where it landed.
async fn produce_from_form(browser: &Browser, key: &str, value: &str) {
    browser.type_into("#produce-key", key).await;
    browser.type_into("#produce-value", value).await;
    browser.click("#produce").await;
    browser.text_until("#produce-result", "where the record landed", |t| t.starts_with("Produced to partition")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_powergrid_walkthrough_in_the_console_alone() {
    let (broker, hdfs) = tokio::join!(TestBroker::start(), HdfsCluster::start());
    create_ingestion_topic(&broker.bootstrap).await;
    let data = tempfile::tempdir().unwrap();
    let server = SluiceServer::start(&broker.bootstrap, data.path().to_path_buf()).await;
    let browser = Browser::start("walkthrough", Scheme::Light).await;

    // Statements typed into the SQL editor: the seed's stream, six routing queries, a query
    // that fails on a reading whose modality is not a number, and the HDFS sink.
    let failing = "CREATE STREAM MODALITIES AS SELECT CAST(EXTRACTJSONFIELD(PAYLOAD, '$.modality') AS INTEGER) AS MODALITY FROM STREAM_INGESTION;";
    let script = format!("{CREATE_INGESTION}\n{}{failing}\n{}", routing_statements(), sink_statement(&hdfs.url));
    run_in_editor(&browser, &server, &script, 9).await;
    browser.screenshot("1-statements").await;

    // Readings produced from the topic browser, and one found again by its text.
    browser.open(&format!("{}/#topics/INGESTION", server.url)).await;
    browser.find("#produce-partition option[value='2']").await;
    for sensor in 1..=SENSORS {
        produce_from_form(&browser, &format!("{sensor}-0"), &powergrid_record(sensor, 0)).await;
    }
    let bad = r#"{"payload": "{\"sensor_id\": 9, \"modality\": \"abc\"}", "correlation_id": "bad-1", "created_at": 1.0, "schema_version": 1}"#;
    produce_from_form(&browser, "9-0", bad).await;
    browser.type_into("#browse-filter", "04-000000").await;
    browser.click("#browse-read").await;
    let found = browser.all_until("#records tr.record", 1).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("\"correlation_id\": \"04-000000\""), "{found:?}");
    browser.screenshot("2-topic-browser").await;

    // The flow graph: six routing queries, their streams and topics, the sink and its folder.
    browser.open(&format!("{}/#flow", server.url)).await;
    browser.all_until("#flow-graph g.node.query", 7).await;
    for id in 1..=SENSORS {
        browser.find(&format!("#flow-graph g.node.stream[data-id='source:SENSOR_ID_{id}']")).await;
        browser.find(&format!("#flow-graph g.edge[data-from='topic:SENSOR_ID_{id}'][data-to='connector:GRID_HDFS']")).await;
    }
    assert_eq!(browser.client.find_all(fantoccini::Locator::Css("#flow-graph g.node.query[data-id^='query:CSAS_SENSOR_ID_']")).await.unwrap().len(), 6);
    browser.find("#flow-graph g.node.store").await;
    browser.find("#flow-graph g.node.query.erring[data-id^='query:CSAS_MODALITIES_']").await;
    browser.screenshot("3-flow").await;

    // The failing query, its last error and the record that caused it.
    browser.open(&format!("{}/#queries", server.url)).await;
    let failing_id = browser
        .all_until("#queries a[href^='#queries/CSAS_MODALITIES_']", 1)
        .await
        .remove(0);
    browser.open(&format!("{}/#queries/{failing_id}", server.url)).await;
    browser.text_until("#last-error", "the last error", |t| t.contains("Last error (record processing)")).await;
    browser.text_until("#last-bad-record", "the bad record", |t| t.contains("\"correlation_id\": \"bad-1\"")).await;
    browser.screenshot("4-failing-query").await;

    // A push query in the editor shows a reading produced while it runs, and stops.
    browser.open(&format!("{}/#sql", server.url)).await;
    browser.type_into("#sql-editor", "SELECT * FROM SENSOR_ID_3 EMIT CHANGES;").await;
    browser.click("#sql-run").await;
    browser.text_until("#sql-query-state", "the query started", |t| t.contains("waiting for rows")).await;
    let readings = producer(&broker.bootstrap);
    produce(&readings, "INGESTION", "3-1", &powergrid_record(3, 1)).await;
    let rows = browser.all_until("#sql-rows tr.row", 1).await;
    assert!(rows[0].contains("03-000001"), "{rows:?}");
    browser.click("#sql-stop").await;
    browser.text_until("#sql-query-state", "the query stopped", |t| t == "Stopped after 1 row.").await;
    produce(&readings, "INGESTION", "3-2", &powergrid_record(3, 2)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(browser.all_until("#sql-rows tr.row", 1).await.len(), 1, "a stopped query shows no more rows");
    browser.screenshot("5-push-query").await;

    // The sink's committed files in HDFS, and a file's first line.
    browser.open(&format!("{}/#connectors/GRID_HDFS", server.url)).await;
    let mut files = Vec::new();
    for _ in 0..30 {
        browser.click("#refresh-files").await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        files = browser.client.find_all(fantoccini::Locator::Css("#connector-files li.file[data-path^='/grid-wattage/SENSOR_ID_3/partition=']")).await.unwrap();
        if files.len() >= 3 {
            break;
        }
    }
    assert_eq!(files.len(), 3, "SENSOR_ID_3's three readings, one file each (flush.size 1)");
    let names: Vec<String> = hdfs.list_files("/grid-wattage/SENSOR_ID_3").into_iter().map(|p| p.rsplit('/').next().unwrap().to_string()).collect();
    for file in &files {
        let path = file.attr("data-path").await.unwrap().unwrap();
        assert!(names.iter().any(|n| path.ends_with(&format!("/{n}"))), "{path} not in HDFS: {names:?}");
    }
    files[0].click().await.unwrap();
    browser.text_until("#preview-lines", "the file's first line", |t| t.contains("\"CORRELATION_ID\":\"03-00000")).await;
    browser.screenshot("6-connector-files").await;

    // A syntax error after a comment line is shown at its line and column in the editor.
    browser.open(&format!("{}/#sql", server.url)).await;
    browser.type_into("#sql-editor", "-- route sensor 7\nCREATE STREAM SENSOR_ID_7 AS SELECT * FROM STREAM_INGESTION WHER 1 = 1;").await;
    browser.click("#sql-run").await;
    browser.text_until("#sql-error-position", "the error's position", |t| t == "At line 2, column 66:").await;
    let caret = browser.script("return document.getElementById('sql-editor').selectionStart;").await;
    assert_eq!(caret, serde_json::json!("-- route sensor 7\n".len() + 65), "the editor's cursor is put at the error");
    browser.screenshot("7-syntax-error").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_follows_the_browsers_light_or_dark_scheme() {
    let data = tempfile::tempdir().unwrap();
    let server = SluiceServer::start_embedded(data.path().to_path_buf()).await;
    for (scheme, name, background) in [(Scheme::Light, "light", "rgb(255, 255, 255)"), (Scheme::Dark, "dark", "rgb(15, 20, 25)")] {
        let browser = Browser::start(&format!("scheme-{name}"), scheme).await;
        browser.open(&format!("{}/#flow", server.url)).await;
        browser.text_until("#view", "the empty flow", |t| t.contains("Nothing runs yet")).await;
        let shown = browser.script("return getComputedStyle(document.body).backgroundColor;").await;
        assert_eq!(shown, serde_json::json!(background), "{name} scheme");
        browser.screenshot("flow").await;
        browser.close().await;
    }
}
