//! The client against a server behind HTTP Basic authentication: `-u`/`-p`, the password
//! asked for when `-p` is missing, ksqlDB's CLI messages when refused, and `migrate` alike.

mod common;

use std::{process::Command, sync::Arc, time::Duration};

use common::start_guarded_server;
use expectrl::{Expect, Session};
use sluice::{config::BasicAuthentication, server::auth::Guard};

/// A guard letting in `fred` (password `letmein`, role `user`); `mallory` has no allowed role.
fn guard(dir: &std::path::Path) -> Arc<Guard> {
    let passwords = dir.join("password-file");
    std::fs::write(&passwords, "fred: letmein,user\nmallory: opensesame,guest\n").unwrap();
    let jaas = dir.join("jaas.conf");
    std::fs::write(
        &jaas,
        format!("KsqlServer-Props {{ org.eclipse.jetty.jaas.spi.PropertyFileLoginModule required file=\"{}\"; }};", passwords.display()),
    )
    .unwrap();
    let config = BasicAuthentication { realm: "KsqlServer-Props".into(), roles: vec!["user".into()], skip_paths: Vec::new(), jaas_config: jaas };
    Arc::new(Guard::load(&config).unwrap())
}

fn sluice(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_sluice")).args(args).output().unwrap();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (output.status.code().unwrap_or(-1), text(&output.stdout), text(&output.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn credentials_from_flags_or_the_prompt_open_the_server_and_wrong_ones_are_told_plainly() {
    let dir = tempfile::tempdir().unwrap();
    let (url, broker, shutdown) = start_guarded_server(dir.path(), Some(guard(dir.path()))).await;
    let migrations = dir.path().join("migrations");
    std::fs::create_dir(&migrations).unwrap();
    std::fs::write(migrations.join("V000001__notes.sql"), "CREATE STREAM NOTES (TEXT STRING) WITH (KAFKA_TOPIC='notes', VALUE_FORMAT='JSON', PARTITIONS=1);\n").unwrap();
    let server = url.clone();
    let migrations_dir = migrations.to_str().unwrap().to_string();
    tokio::task::spawn_blocking(move || {
        let (code, stdout, stderr) = sluice(&["--server", &server, "-u", "fred", "-p", "letmein", "migrate", "apply", &migrations_dir]);
        assert_eq!(code, 0, "{stdout}{stderr}");
        let (code, stdout, stderr) = sluice(&["--server", &server, "-u", "fred", "-p", "letmein", "-e", "SHOW STREAMS;"]);
        assert_eq!(code, 0, "{stdout}{stderr}");
        assert!(stdout.contains("NOTES"), "{stdout}");

        let (code, _, stderr) = sluice(&["--server", &server, "-u", "fred", "-p", "wrong", "-e", "SHOW STREAMS;"]);
        assert_eq!(code, 1);
        assert!(stderr.contains("Could not authenticate successfully with the supplied credentials."), "{stderr}");
        let (code, _, stderr) = sluice(&["--server", &server, "-e", "SHOW STREAMS;"]);
        assert_eq!(code, 1);
        assert!(stderr.contains("Could not authenticate successfully with the supplied credentials."), "{stderr}");
        let (code, _, stderr) = sluice(&["--server", &server, "-u", "mallory", "-p", "opensesame", "-e", "SHOW STREAMS;"]);
        assert_eq!(code, 1);
        assert!(stderr.contains("You are forbidden from using this cluster."), "{stderr}");

        let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
        command.args(["--server", &server, "-u", "fred", "-e", "SHOW STREAMS;"]);
        let mut prompted = Session::spawn(command).unwrap();
        prompted.set_expect_timeout(Some(Duration::from_secs(30)));
        prompted.expect("Enter password: ").unwrap();
        prompted.send_line("letmein").unwrap();
        prompted.expect("NOTES").unwrap();
        prompted.expect(expectrl::Eof).unwrap();
    })
    .await
    .unwrap();
    shutdown.cancel();
    broker.stop();
}
