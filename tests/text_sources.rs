//! The text sources that retire Flume, against a real broker and a real HDFS: lines dropped
//! into a spooling directory, appended to a tailed file, POSTed as Flume events and sent over
//! TCP each land once in `UNORGANIZED`, across a `kill -9`, and then in HDFS through the
//! seed's `hdfs-sink-unorganized` config.

mod common;

use std::{
    io::{BufRead, BufReader, Write},
    net::TcpStream,
    time::{Duration, Instant},
};

use common::{SluiceServer, TestBroker, free_port, hdfs::HdfsCluster, read_topic};
use serde_json::json;

async fn topic(bootstrap: &str, topic: &str, expected: usize) -> Vec<(Option<String>, String)> {
    let (bootstrap, topic) = (bootstrap.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || read_topic(&bootstrap, &topic, expected, Duration::from_secs(60))).await.unwrap()
}

fn lines(records: &[(Option<String>, String)]) -> Vec<String> {
    records.iter().map(|(_, v)| v.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn spooled_tailed_posted_and_sent_lines_land_once_then_in_hdfs() {
    let broker = TestBroker::start().await;
    let hdfs = HdfsCluster::start().await;
    let data = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let (input, finished, error) = (files.path().join("in"), files.path().join("done"), files.path().join("error"));
    let tailed = files.path().join("app.log");
    std::fs::write(&tailed, "first line\n").unwrap();
    let server = SluiceServer::start(&broker.bootstrap, data.path().to_path_buf()).await;
    let (http_port, tcp_port) = (free_port(), free_port());

    server.ksql_ok(&format!(
        "CREATE SOURCE CONNECTOR spool WITH ('connector.class' = 'com.github.jcustenborder.kafka.connect.spooldir.SpoolDirLineDelimitedSourceConnector',
           'topic' = 'SPOOLED', 'input.path' = '{}', 'finished.path' = '{}', 'error.path' = '{}',
           'input.file.pattern' = '.*\\.txt', 'empty.poll.wait.ms' = '100');",
        input.display(), finished.display(), error.display()
    )).await;
    server.ksql_ok(&format!(
        "CREATE SOURCE CONNECTOR tail WITH ('connector.class' = 'FileStreamSource', 'topic' = 'TAILED', 'file' = '{}');",
        tailed.display()
    )).await;
    server.ksql_ok(&format!(
        "CREATE SOURCE CONNECTOR web WITH ('connector.class' = 'org.apache.flume.source.http.HTTPSource', 'bind' = '127.0.0.1', 'port' = '{http_port}', 'topic' = 'UNORGANIZED');"
    )).await;
    server.ksql_ok(&format!(
        "CREATE SOURCE CONNECTOR nc WITH ('connector.class' = 'netcat', 'bind' = '127.0.0.1', 'port' = '{tcp_port}', 'kafka.topic' = 'UNORGANIZED');"
    )).await;

    std::fs::write(files.path().join("a.txt.partial"), "alpha 1\nalpha 2\nalpha 3").unwrap();
    std::fs::rename(files.path().join("a.txt.partial"), input.join("a.txt")).unwrap();
    std::fs::write(input.join("ignored.csv"), "not mine\n").unwrap();
    assert_eq!(lines(&topic(&broker.bootstrap, "SPOOLED", 3).await), ["alpha 1", "alpha 2", "alpha 3"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !finished.join("a.txt").exists() {
        assert!(Instant::now() < deadline, "a.txt was never moved to finished.path");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(input.join("ignored.csv").exists(), "a file the pattern does not take stays");

    std::fs::OpenOptions::new().append(true).open(&tailed).unwrap().write_all(b"second line\r\nthird").unwrap();
    assert_eq!(lines(&topic(&broker.bootstrap, "TAILED", 2).await), ["first line", "second line"], "an unfinished line waits");

    let client = server.client().clone();
    let events = json!([{"headers": {"key": "breaker-12"}, "body": "breaker 12 tripped"}, {"headers": {}, "body": "line 7 sagging"}]);
    let posted = client.post(format!("http://127.0.0.1:{http_port}/")).json(&events).send().await.unwrap();
    assert_eq!(posted.status().as_u16(), 200);
    let plain = client.post(format!("http://127.0.0.1:{http_port}/")).body("plain one\nplain two\n").send().await.unwrap();
    assert_eq!(plain.status().as_u16(), 200);
    let bad = client
        .post(format!("http://127.0.0.1:{http_port}/"))
        .header("content-type", "application/json")
        .body("[{\"body\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400, "a body that is not a Flume event array is refused");

    let acknowledged = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(("127.0.0.1", tcp_port)).unwrap();
        stream.write_all(b"tcp one\ntcp two\n").unwrap();
        let mut reader = BufReader::new(stream);
        let mut acks = Vec::new();
        for _ in 0..2 {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            acks.push(line);
        }
        acks
    })
    .await
    .unwrap();
    assert_eq!(acknowledged, ["OK\n", "OK\n"]);

    let unorganized = topic(&broker.bootstrap, "UNORGANIZED", 6).await;
    assert_eq!(
        lines(&unorganized),
        ["breaker 12 tripped", "line 7 sagging", "plain one", "plain two", "tcp one", "tcp two"]
    );
    assert_eq!(unorganized[0].0.as_deref(), Some("breaker-12"), "Flume's key header keys the record");

    server.ksql_ok(&format!(
        "CREATE SINK CONNECTOR `hdfs-sink-unorganized` WITH (
            'connector.class' = 'io.confluent.connect.hdfs.HdfsSinkConnector', 'tasks.max' = '1', 'topics' = 'UNORGANIZED',
            'hdfs.url' = '{}', 'topics.dir' = '/unorganized', 'flush.size' = '6', 'rotate.interval.ms' = '10000',
            'format.class' = 'io.confluent.connect.hdfs.string.StringFormat',
            'key.converter' = 'org.apache.kafka.connect.storage.StringConverter', 'key.converter.schemas.enable' = 'false',
            'value.converter' = 'org.apache.kafka.connect.storage.StringConverter', 'value.converter.schemas.enable' = 'false');",
        hdfs.url
    )).await;
    let file = "/unorganized/UNORGANIZED/partition=0/UNORGANIZED+0+0000000000+0000000005.txt";
    let deadline = Instant::now() + Duration::from_secs(60);
    while !hdfs.list_files("/unorganized").contains(&file.to_string()) {
        assert!(Instant::now() < deadline, "the lines never landed in HDFS: {:?}", hdfs.list_files("/unorganized"));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(
        hdfs.shell(&["-cat", file]),
        "breaker 12 tripped\nline 7 sagging\nplain one\nplain two\ntcp one\ntcp two\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_kill_9_while_files_are_read_neither_repeats_nor_skips_a_line() {
    const LINES: usize = 12_000;
    let broker = TestBroker::start().await;
    let data = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let (input, finished, error) = (files.path().join("in"), files.path().join("done"), files.path().join("error"));
    std::fs::create_dir_all(&input).unwrap();
    let tailed = files.path().join("app.log");
    let text: String = (0..LINES).map(|n| format!("line {n}\n")).collect();
    std::fs::write(&tailed, &text).unwrap();
    std::fs::write(input.join("big.txt"), &text).unwrap();
    let mut server = SluiceServer::start(&broker.bootstrap, data.path().to_path_buf()).await;
    server.ksql_ok(&format!(
        "CREATE SOURCE CONNECTOR spool WITH ('connector.class' = 'SpoolDirLineDelimitedSourceConnector', 'topic' = 'SPOOLED',
           'input.path' = '{}', 'finished.path' = '{}', 'error.path' = '{}', 'input.file.pattern' = 'big\\.txt', 'batch.size' = '1000');",
        input.display(), finished.display(), error.display()
    )).await;
    server.ksql_ok(&format!(
        "CREATE SOURCE CONNECTOR tail WITH ('connector.class' = 'FileStreamSource', 'topic' = 'TAILED', 'file' = '{}', 'batch.size' = '1000');",
        tailed.display()
    )).await;
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        server.kill();
        server.start_again().await;
    }
    std::fs::OpenOptions::new().append(true).open(&tailed).unwrap().write_all(b"after the crashes\n").unwrap();
    let expected: Vec<String> = (0..LINES).map(|n| format!("line {n}")).collect();
    assert_eq!(lines(&topic(&broker.bootstrap, "SPOOLED", LINES).await), expected, "every spooled line once, in order");
    let mut expected_tail = expected.clone();
    expected_tail.push("after the crashes".to_string());
    assert_eq!(lines(&topic(&broker.bootstrap, "TAILED", LINES + 1).await), expected_tail, "every tailed line once, in order");
}
