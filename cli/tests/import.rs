//! `sluice import` against a real PostgreSQL 15 and a real HDFS: the seed's `sqoop import`
//! command with `sluice` in its place, Sqoop's text and direct formats, splits, free-form
//! queries, append and delete, Parquet, and a failed import leaving nothing behind.

mod common;

use std::{path::Path, process::Command};

use common::{
    hdfs::HdfsCluster,
    postgres::{PASSWORD, PostgresServer, SEED, USER},
};

const SEED_ROWS: &str = "1,Node1,75000\n2,Node2,65000\n3,Node3,60000\n4,Node4,80000\n";

fn run(program: &Path, args: &[&str]) -> (i32, String) {
    let output = Command::new(program).args(args).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.code().unwrap_or(-1), text)
}

fn sluice(args: &[&str]) -> (i32, String) {
    run(Path::new(env!("CARGO_BIN_EXE_sluice")), args)
}

/// `sluice import --connect … --username root --password pwd1234` and `extra`.
fn import(postgres: &PostgresServer, extra: &[&str]) -> (i32, String) {
    let url = postgres.jdbc_url("telemetry");
    let mut args = vec!["import", "--connect", &url, "--username", USER, "--password", PASSWORD];
    args.extend_from_slice(extra);
    sluice(&args)
}

fn read_dir(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeds_sqoop_command_lands_old_telemetry_in_hdfs_once() {
    let hdfs = HdfsCluster::start().await;
    let postgres = PostgresServer::start("telemetry");
    postgres.psql("telemetry", SEED);
    let seed = [
        "--table", "telemetry", "--target-dir", "/old-telemetry", "--direct", "--m", "1",
        "--hdfs-url", &hdfs.url,
    ];

    let (code, out) = import(&postgres, &seed);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Retrieved 4 records"), "{out}");
    assert_eq!(hdfs.shell(&["-cat", "/old-telemetry/*"]), SEED_ROWS);
    assert_eq!(
        hdfs.list_files("/old-telemetry"),
        ["/old-telemetry/_SUCCESS", "/old-telemetry/part-m-00000"]
    );

    let (code, out) = import(&postgres, &seed);
    assert_ne!(code, 0, "a second import into the same directory must be refused");
    assert!(out.contains(&format!("Output directory {}/old-telemetry already exists", hdfs.url)), "{out}");
    assert_eq!(hdfs.shell(&["-cat", "/old-telemetry/*"]), SEED_ROWS);
    assert_eq!(hdfs.shell(&["-ls", "/"]).matches("importing").count(), 0, "no staging directory is left");

    let link_dir = tempfile::tempdir().unwrap();
    let sqoop = link_dir.path().join("sqoop");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_sluice"), &sqoop).unwrap();
    let url = postgres.jdbc_url("telemetry");
    let (code, out) = run(
        &sqoop,
        &[
            "import", "-fs", &hdfs.url, "--connect", &url, "--username", USER, "--password", PASSWORD,
            "--table", "telemetry", "--target-dir", "/via-sqoop-name", "--m", "2",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(hdfs.shell(&["-cat", "/via-sqoop-name/part-m-00000"]), "1,Node1,75000\n2,Node2,65000\n");
    assert_eq!(hdfs.shell(&["-cat", "/via-sqoop-name/part-m-00001"]), "3,Node3,60000\n4,Node4,80000\n");
}

const TYPED: &str = "CREATE TABLE readings (
  id BIGINT PRIMARY KEY,
  node TEXT,
  ok BOOLEAN,
  watts DOUBLE PRECISION,
  price NUMERIC(8,2),
  at TIMESTAMP,
  day DATE,
  note VARCHAR(40)
);
INSERT INTO readings VALUES
(1, 'Node1', true, 75000, 1.50, '2026-12-03 10:00:00', '2026-12-03', 'a,b'),
(2, 'Node2', false, 0.0001, NULL, '2026-12-03 10:00:00.25', NULL, 'tab\there'),
(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL);";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_direct_and_parquet_formats_match_sqoops() {
    let postgres = PostgresServer::start("telemetry");
    postgres.psql("telemetry", TYPED);
    let out_dir = tempfile::tempdir().unwrap();
    let target = |name: &str| format!("file://{}", out_dir.path().join(name).display());

    let (code, out) = import(&postgres, &["--table", "readings", "--target-dir", &target("text"), "-m", "1"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        std::fs::read_to_string(out_dir.path().join("text/part-m-00000")).unwrap(),
        "1,Node1,true,75000.0,1.50,2026-12-03 10:00:00.0,2026-12-03,a,b\n\
         2,Node2,false,1.0E-4,null,2026-12-03 10:00:00.25,null,tab\there\n\
         3,null,null,null,null,null,null,null\n"
    );

    let (code, out) = import(
        &postgres,
        &[
            "--table", "readings", "--target-dir", &target("tabs"), "-m", "1", "--columns", "id,node,ok",
            "--where", "id >= 2", "--fields-terminated-by", "\\t", "--null-string", "\\\\N",
            "--null-non-string", "-1",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        std::fs::read_to_string(out_dir.path().join("tabs/part-m-00000")).unwrap(),
        "2\tNode2\tfalse\n3\t\\N\t-1\n"
    );

    let (code, out) = import(&postgres, &["--table", "readings", "--target-dir", &target("direct"), "--direct", "-m", "1"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        std::fs::read_to_string(out_dir.path().join("direct/part-m-00000")).unwrap(),
        "1,Node1,TRUE,75000,1.50,2026-12-03 10:00:00,2026-12-03,\"a,b\"\n\
         2,Node2,FALSE,0.0001,,2026-12-03 10:00:00.25,,tab\there\n\
         3,,,,,,,\n"
    );
    let psql_copy = out_dir.path().join("psql.csv");
    postgres.copy_to_file("telemetry", "SELECT id, node, CASE WHEN ok THEN 'TRUE' WHEN NOT ok THEN 'FALSE' END, watts, price, at, day, note FROM readings", &psql_copy);
    assert_eq!(
        std::fs::read(out_dir.path().join("direct/part-m-00000")).unwrap(),
        std::fs::read(&psql_copy).unwrap(),
        "--direct writes what psql's \\copy … csv writes"
    );

    let (code, out) = import(&postgres, &["--table", "readings", "--target-dir", &target("parquet"), "--as-parquetfile", "-m", "2"]);
    assert_eq!(code, 0, "{out}");
    // Sqoop's splitter cuts ids 1..=3 into [1,2) [2,3) [3,3] when two splits are asked for.
    let parts = ["part-m-00000.parquet", "part-m-00001.parquet", "part-m-00002.parquet"];
    assert_eq!(read_dir(&out_dir.path().join("parquet")), [&["_SUCCESS"][..], &parts].concat());
    let rows: usize = parts
        .iter()
        .map(|name| {
            let file = std::fs::File::open(out_dir.path().join("parquet").join(name)).unwrap();
            parquet::file::reader::FileReader::metadata(&parquet::file::reader::SerializedFileReader::new(file).unwrap())
                .file_metadata()
                .num_rows() as usize
        })
        .sum();
    assert_eq!(rows, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_splits_append_and_delete_behave_as_sqoops() {
    let postgres = PostgresServer::start("telemetry");
    postgres.psql("telemetry", SEED);
    postgres.psql("telemetry", "INSERT INTO telemetry (name, wattage) SELECT 'Node' || n, n * 1000 FROM generate_series(5, 100) AS n");
    let out_dir = tempfile::tempdir().unwrap();
    let dir = out_dir.path().join("t");
    let target = format!("file://{}", dir.display());
    let part = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();

    let (code, out) = import(&postgres, &["--query", "SELECT id, name FROM telemetry WHERE wattage > 0", "--target-dir", &target, "-m", "1"]);
    assert_ne!(code, 0);
    assert!(out.contains("must contain '$CONDITIONS' in WHERE clause"), "{out}");
    let (code, out) = import(&postgres, &["--query", "SELECT id, name FROM telemetry WHERE $CONDITIONS", "--target-dir", &target]);
    assert_ne!(code, 0);
    assert!(out.contains("you must specify --split-by"), "{out}");

    let (code, out) = import(
        &postgres,
        &["--query", "SELECT id, name FROM telemetry WHERE wattage >= 60000 AND $CONDITIONS", "--split-by", "id", "--target-dir", &target, "-m", "3"],
    );
    assert_eq!(code, 0, "{out}");
    let all: String = ["part-m-00000", "part-m-00001", "part-m-00002"].iter().map(|p| part(p)).collect();
    let expected: String = (1..=100)
        .filter(|n| if *n <= 4 { true } else { n * 1000 >= 60000 })
        .map(|n| format!("{n},Node{n}\n"))
        .collect();
    assert_eq!(all, expected, "every row once, in split order");
    assert!(part("part-m-00000").starts_with("1,Node1\n2,Node2\n"), "{}", part("part-m-00000"));

    let (code, out) = import(&postgres, &["--table", "telemetry", "--where", "id = 1", "--target-dir", &target, "-m", "1", "--append"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(part("part-m-00003"), "1,Node1,75000\n");

    let (code, out) = import(&postgres, &["--table", "telemetry", "--where", "id = 2", "--target-dir", &target, "-m", "1", "--delete-target-dir"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(read_dir(&dir), ["_SUCCESS", "part-m-00000"]);
    assert_eq!(part("part-m-00000"), "2,Node2,65000\n");

    postgres.psql("telemetry", "CREATE TABLE nokey (v INT); INSERT INTO nokey VALUES (1)");
    let (code, out) = import(&postgres, &["--table", "nokey", "--target-dir", &format!("{target}-nokey")]);
    assert_ne!(code, 0);
    assert!(out.contains("No primary key could be found for table nokey"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_import_leaves_no_target_and_says_why() {
    let postgres = PostgresServer::start("telemetry");
    postgres.psql("telemetry", SEED);
    let out_dir = tempfile::tempdir().unwrap();
    let dir = out_dir.path().join("t");
    let target = format!("file://{}", dir.display());

    let (code, out) = import(
        &postgres,
        &["--query", "SELECT id, 100 / (3 - id) FROM telemetry WHERE $CONDITIONS", "--split-by", "id", "-m", "2", "--target-dir", &target],
    );
    assert_ne!(code, 0);
    assert!(out.contains("division by zero"), "{out}");
    assert_eq!(read_dir(out_dir.path()), Vec::<String>::new(), "neither the target nor a staging directory is left");

    let url = postgres.jdbc_url("telemetry");
    let (code, out) = sluice(&["import", "--connect", &url, "--username", USER, "--password", "wrong", "--table", "telemetry", "--target-dir", &target]);
    assert_ne!(code, 0);
    assert!(out.contains("password authentication failed for user \"root\""), "{out}");

    let password_file = out_dir.path().join("password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
    let file = password_file.display().to_string();
    let (code, out) = sluice(&["import", "--connect", &url, "--username", USER, "--password-file", &file, "--table", "telemetry", "--target-dir", &target, "-m", "1"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(std::fs::read_to_string(dir.join("part-m-00000")).unwrap(), SEED_ROWS);
}
