//! A real PostgreSQL 15 server (the machine's `/usr/lib/postgresql/<version>/bin`, installed by
//! `.ci/install-deps`) on a 127.0.0.1 port of its own, with `wal_level = logical`, and its own
//! `psql` to set up and look at data. The server refuses to run as root, so as root it runs as
//! the `postgres` user.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    time::{Duration, Instant},
};

use tempfile::TempDir;

use super::free_port;

/// The user and password of the seed's Helm chart.
pub const USER: &str = "root";
pub const PASSWORD: &str = "pwd1234";

/// The seed's table and rows (`powergrid-solution.md`), verbatim.
pub const SEED: &str = "CREATE TABLE telemetry (
  id SERIAL PRIMARY KEY,
  name VARCHAR(255) NOT NULL,
  wattage INT NOT NULL
);
INSERT INTO telemetry (name, wattage) VALUES
('Node1', 75000),
('Node2', 65000),
('Node3', 60000),
('Node4', 80000);";

/// PostgreSQL's binaries; a missing install is a failure, never a skip.
fn bin_dir() -> PathBuf {
    let installed = std::fs::read_dir("/usr/lib/postgresql")
        .ok()
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists())
        .max();
    installed.expect("PostgreSQL is not installed in /usr/lib/postgresql: run .ci/install-deps")
}

fn is_root() -> bool {
    let output = Command::new("id").arg("-u").output().expect("id runs");
    String::from_utf8_lossy(&output.stdout).trim() == "0"
}

pub struct PostgresServer {
    pub port: u16,
    dir: TempDir,
    bin: PathBuf,
}

impl PostgresServer {
    /// Creates a cluster and starts it; the seed's `root` user (password `pwd1234`, md5 as the
    /// seed's chart sets it) owns database `database`.
    pub fn start(database: &str) -> PostgresServer {
        let dir = tempfile::tempdir().unwrap();
        let server = PostgresServer { port: free_port(), dir, bin: bin_dir() };
        if is_root() {
            let chown = Command::new("chown").args(["-R", "postgres:postgres"]).arg(server.dir.path()).status();
            assert!(chown.expect("chown runs").success(), "chown of the data directory failed");
        }
        let data = server.data_dir();
        server.run_as_owner(
            "initdb",
            &["-D", &data, "-U", "postgres", "--auth-local=trust", "--auth-host=md5", "-E", "UTF8", "--locale=C"],
        );
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c wal_level=logical -c max_wal_senders=8 \
             -c max_replication_slots=8 -c password_encryption=md5 -c fsync=off",
            server.port,
            server.socket_dir()
        );
        let log = server.dir.path().join("postgres.log").display().to_string();
        server.run_as_owner("pg_ctl", &["-D", &data, "-l", &log, "-w", "-o", &options, "start"]);
        server.admin(&format!("CREATE ROLE {USER} LOGIN SUPERUSER REPLICATION PASSWORD '{PASSWORD}'"));
        server.admin(&format!("CREATE DATABASE {database} OWNER {USER}"));
        server
    }

    fn data_dir(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn socket_dir(&self) -> String {
        self.dir.path().display().to_string()
    }

    /// `jdbc:postgresql://127.0.0.1:<port>/<database>`.
    pub fn jdbc_url(&self, database: &str) -> String {
        format!("jdbc:postgresql://127.0.0.1:{}/{database}", self.port)
    }

    /// `program` run as the cluster's owner: `postgres` when the tests run as root.
    fn owner_command(&self, program: &str) -> Command {
        let binary = self.bin.join(program);
        if is_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(binary);
            command
        } else {
            Command::new(binary)
        }
    }

    fn run_as_owner(&self, program: &str, args: &[&str]) -> Output {
        let output = self
            .owner_command(program)
            .args(args).output().unwrap_or_else(|e| panic!("{program} runs: {e}"));
        assert!(
            output.status.success(),
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// Runs SQL as the `postgres` superuser in its own database.
    fn admin(&self, sql: &str) -> String {
        self.psql_as("postgres", "postgres", sql)
    }

    /// Runs SQL in `database` as the seed's user; returns psql's unaligned output.
    pub fn psql(&self, database: &str, sql: &str) -> String {
        self.psql_as(USER, database, sql)
    }

    fn psql_as(&self, user: &str, database: &str, sql: &str) -> String {
        let output = Command::new(self.bin.join("psql"))
            .args(["-h", &self.socket_dir(), "-p", &self.port.to_string(), "-U", user, "-d", database])
            .args(["-v", "ON_ERROR_STOP=1", "-X", "-q", "-A", "-t", "-c", sql])
            .output()
            .expect("psql runs");
        assert!(output.status.success(), "psql failed: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    }

    /// psql's `\copy (query) to 'file'`, for comparing with its own output.
    pub fn copy_to_file(&self, database: &str, query: &str, file: &Path) {
        self.psql(database, &format!("\\copy ({query}) to '{}' with (format csv)", file.display()));
    }

    /// Waits until the server accepts connections (after a restart).
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let ready = Command::new(self.bin.join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("PostgreSQL did not accept connections within 30 s");
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        let data = self.data_dir();
        let stop = self.owner_command("pg_ctl").args(["-D", &data, "-m", "immediate", "-w", "stop"]).output();
        if let Err(e) = stop {
            eprintln!("pg_ctl stop failed: {e}");
        }
    }
}
