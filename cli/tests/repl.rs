//! The REPL as a user meets it, driven through a pseudo-terminal: multi-line statements, tables,
//! a push query stopped with Ctrl-C, history and clear, and the prompt coming back.

mod common;

use std::{process::Command, time::Duration};

use common::start_server;
use expectrl::{ControlCode, Expect, Session};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_user_types_statements_sees_tables_and_stops_a_push_query_with_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let (url, broker, shutdown) = start_server(dir.path()).await;
    let home = dir.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
        command.args(["--server", &url]).env("HOME", &home);
        let mut repl = Session::spawn(command).unwrap();
        repl.set_expect_timeout(Some(Duration::from_secs(30)));
        repl.expect("Server Status: RUNNING").unwrap();
        repl.expect(format!("Web console: {url}/").as_str()).unwrap();
        repl.expect("sluice> ").unwrap();

        repl.send_line("CREATE STREAM STREAM_INGESTION (payload STRING, correlation_id STRING,").unwrap();
        repl.expect("...> ").unwrap();
        // Like a person, wait for the prompt before typing the next statement.
        let mut type_and_see = |line: &str, shown: &str| {
            repl.send_line(line).unwrap();
            repl.expect(shown).unwrap_or_else(|e| panic!("after {line:?}, expected {shown:?}: {e}"));
            repl.expect("sluice> ").unwrap();
        };
        type_and_see(
            "  created_at DOUBLE, schema_version INTEGER) WITH (KAFKA_TOPIC = 'INGESTION', VALUE_FORMAT = 'JSON', PARTITIONS = 1);",
            "Stream created",
        );
        type_and_see(
            "INSERT INTO STREAM_INGESTION (payload, correlation_id, created_at, schema_version) VALUES ('{\"sensor_id\": 3}', 'c-1', 1.5, 1);",
            "1);",
        );
        type_and_see("SHOW STREAMS;", " STREAM_INGESTION | INGESTION   | KAFKA      | JSON");
        type_and_see(
            "SET 'auto.offset.reset' = 'earliest';",
            "Successfully changed local property 'auto.offset.reset' to 'earliest'.",
        );
        type_and_see("DESCRIBE NOPE;", "Could not find STREAM/TABLE 'NOPE' in the Metastore");
        type_and_see("SELEC 1;", "  SELEC 1;\r\n  ^");
        type_and_see("history", "    3  SHOW STREAMS;");
        type_and_see("clear", "\x1b[H");

        repl.send_line("SELECT CORRELATION_ID, EXTRACTJSONFIELD(PAYLOAD, '$.sensor_id') AS SENSOR FROM STREAM_INGESTION EMIT CHANGES;").unwrap();
        repl.expect("|CORRELATION_ID|SENSOR").unwrap();
        repl.expect("|c-1").unwrap();
        repl.send(ControlCode::EndOfText).unwrap();
        repl.expect("Query terminated").unwrap();
        repl.expect("sluice> ").unwrap();
        repl.send_line("exit").unwrap();
        repl.expect(expectrl::Eof).unwrap();
    })
    .await
    .unwrap();
    assert!(dir.path().join(".sluice_history").exists(), "history is kept in ~/.sluice_history");
    shutdown.cancel();
    broker.stop();
}
