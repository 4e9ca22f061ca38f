//! `sluice -f` and `sluice -e` against a real server (in-process here) on a real broker.

mod common;

use std::process::Command;

use common::{free_address, start_server};

fn sluice(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_sluice")).args(args).output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_script_runs_until_its_first_error_and_names_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let (url, broker, shutdown) = start_server(dir.path()).await;
    let script = dir.path().join("pipeline.sql");
    std::fs::write(
        &script,
        "-- the ingestion stream\nCREATE STREAM STREAM_INGESTION (payload STRING, correlation_id STRING, created_at DOUBLE, schema_version INTEGER)\n  WITH (KAFKA_TOPIC = '${topic}', VALUE_FORMAT = 'JSON', PARTITIONS = 1);\n\nCREATE STREAM SENSOR_ID_3 AS\n  SELEC * FROM STREAM_INGESTION;\nCREATE STREAM NEVER_RUN AS SELECT * FROM STREAM_INGESTION;\n",
    )
    .unwrap();
    let script_path = script.to_str().unwrap().to_string();
    let server_url = url.clone();
    let (code, stdout, stderr) = tokio::task::spawn_blocking(move || {
        sluice(&["--server", &server_url, "--define", "topic=INGESTION", "-f", &script_path])
    })
    .await
    .unwrap();
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.contains("Stream created"), "{stdout}");
    assert!(
        stderr.starts_with(&format!("{}:6:3: line 2:3: Syntax Error: expected SELECT, but found 'SELEC'", script.display())),
        "{stderr}"
    );

    let server_url = url.clone();
    let (code, stdout, stderr) =
        tokio::task::spawn_blocking(move || sluice(&["--server", &server_url, "-e", "SHOW STREAMS; SHOW TOPICS;"]))
            .await
            .unwrap();
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains(" STREAM_INGESTION | INGESTION   | KAFKA      | JSON         | false"), "{stdout}");
    assert!(!stdout.contains("NEVER_RUN"), "{stdout}");
    assert!(stdout.contains(" INGESTION   | 1          | 1"), "{stdout}");

    let server_url = url.clone();
    let (_, stdout, _) = tokio::task::spawn_blocking(move || {
        sluice(&["--server", &server_url, "--output", "json", "-e", "SHOW STREAMS;"])
    })
    .await
    .unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(parsed["@type"], "streams");

    // SPOOL copies statements and answers until SPOOL OFF; a SELECT without EMIT CHANGES reads
    // the stream to its current end and returns.
    let spool = dir.path().join("session.txt");
    let statements = format!(
        "INSERT INTO STREAM_INGESTION (payload, correlation_id, created_at, schema_version) VALUES ('{{}}', 'c-17', 1.5, 1); SPOOL '{}'; SHOW STREAMS; SELECT CORRELATION_ID FROM STREAM_INGESTION; SPOOL OFF; SHOW TOPICS;",
        spool.display()
    );
    let server_url = url.clone();
    let (code, stdout, stderr) =
        tokio::task::spawn_blocking(move || sluice(&["--server", &server_url, "-e", &statements]))
            .await
            .unwrap();
    assert_eq!(code, 0, "{stdout}{stderr}");
    let spooled = std::fs::read_to_string(&spool).unwrap();
    assert!(spooled.contains("sluice> SHOW STREAMS;"), "{spooled}");
    assert!(spooled.contains(" STREAM_INGESTION | INGESTION"), "{spooled}");
    assert!(spooled.contains("|c-17"), "the pull query's row: {spooled}");
    assert!(!spooled.contains("Partition Replicas"), "nothing after SPOOL OFF: {spooled}");
    assert!(stdout.contains("Partition Replicas"), "{stdout}");

    shutdown.cancel();
    broker.stop();
}

#[test]
fn an_unreachable_server_is_a_plain_message_not_a_trace() {
    let port = free_address().port();
    let (code, _, stderr) = sluice(&["--server", &format!("http://127.0.0.1:{port}"), "-e", "SHOW STREAMS;"]);
    assert_eq!(code, 1);
    assert!(stderr.starts_with(&format!("cannot reach the server at http://127.0.0.1:{port}")), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
