//! A real Apache Hadoop 2.7.3 NameNode and DataNode (the jars `.ci/install-deps` unpacks
//! from PyPI's `pyspark==2.4.8` into `~/.cache/sluice/hadoop/jars`), on 127.0.0.1 ports of
//! their own, and Hadoop's own `FsShell` to look at what was written.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use tempfile::TempDir;

use super::free_port;

/// The unpacked Hadoop jars; a missing install is a failure, never a skip.
fn hadoop_jars() -> PathBuf {
    let home = std::env::var("HOME").expect("HOME is set");
    let jars = Path::new(&home).join(".cache/sluice/hadoop/jars");
    assert!(
        jars.join("hadoop-hdfs-2.7.3.jar").exists(),
        "Hadoop jars missing in {}: run .ci/install-deps (it downloads them once)",
        jars.display()
    );
    jars
}

pub struct HdfsCluster {
    /// `hdfs://127.0.0.1:<port>`, the `hdfs.url` of a sink.
    pub url: String,
    dir: TempDir,
    namenode: Option<Child>,
    datanode: Option<Child>,
}

impl HdfsCluster {
    /// Formats a fresh namespace and starts a NameNode and a DataNode; returns once a file
    /// can be written.
    pub async fn start() -> HdfsCluster {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        write_config(dir.path(), port);
        let mut cluster = HdfsCluster {
            url: format!("hdfs://127.0.0.1:{port}"),
            dir,
            namenode: None,
            datanode: None,
        };
        let format = cluster
            .java("org.apache.hadoop.hdfs.server.namenode.NameNode")
            .args(["-format", "-nonInteractive"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("java runs");
        assert!(format.success(), "NameNode -format failed");
        cluster.start_namenode();
        cluster.datanode = Some(cluster.daemon("org.apache.hadoop.hdfs.server.datanode.DataNode", "datanode"));
        cluster.wait_writable().await;
        cluster
    }

    /// A `java` command with Hadoop's classpath and this cluster's `conf/`.
    fn java(&self, class: &str) -> Command {
        let root = self.dir.path();
        let classpath = format!(
            "{}:{}:{}/*",
            root.join("conf").display(),
            root.join("webroot").display(),
            hadoop_jars().display()
        );
        let mut command = Command::new("java");
        command.args(["-Xmx256m", "-XX:+UseSerialGC", "-cp", &classpath, class]);
        command
    }

    fn daemon(&self, class: &str, name: &str) -> Child {
        let log = std::fs::File::create(self.dir.path().join(format!("{name}.log"))).unwrap();
        self.java(class)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("java runs")
    }

    pub fn start_namenode(&mut self) {
        self.namenode = Some(self.daemon("org.apache.hadoop.hdfs.server.namenode.NameNode", "namenode"));
    }

    /// Kills the NameNode (the DataNode stays up and re-registers when it is back).
    pub fn stop_namenode(&mut self) {
        if let Some(mut child) = self.namenode.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits until a client can create a file, i.e. the NameNode is out of safe mode and a
    /// DataNode has registered.
    pub async fn wait_writable(&self) {
        let client = hdfs_native::ClientBuilder::new().with_url(&self.url).build().unwrap();
        let deadline = Instant::now() + Duration::from_secs(90);
        let mut last_error = String::new();
        while Instant::now() < deadline {
            match probe_write(&client).await {
                Ok(()) => return,
                Err(e) => last_error = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let log = std::fs::read_to_string(self.dir.path().join("namenode.log")).unwrap_or_default();
        let tail: String = log.lines().rev().take(30).collect::<Vec<_>>().join("\n");
        panic!("HDFS not writable after 90 s: {last_error}\nnamenode.log (last lines, newest first):\n{tail}");
    }

    /// Runs Hadoop's `hdfs dfs` (`FsShell`) against this cluster; returns stdout, panicking
    /// with stderr when it fails.
    pub fn shell(&self, args: &[&str]) -> String {
        let output = self
            .java("org.apache.hadoop.fs.FsShell")
            .args(["-fs", &self.url])
            .args(args)
            .output()
            .expect("java runs");
        assert!(
            output.status.success(),
            "hdfs dfs {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// Paths of the files under `dir`, recursively, as `hdfs dfs -ls -R` lists them.
    pub fn list_files(&self, dir: &str) -> Vec<String> {
        let mut files: Vec<String> = self
            .shell(&["-ls", "-R", dir])
            .lines()
            .filter(|line| line.starts_with('-'))
            .filter_map(|line| line.split_whitespace().last().map(str::to_string))
            .collect();
        files.sort();
        files
    }

    /// Every record of `topic_dir` read back through `hdfs dfs -cat`, checked to be laid out in
    /// contiguous files with no gap and no overlap per partition.
    pub fn read_back(&self, topic_dir: &str) -> Vec<String> {
        let files = self.list_files(topic_dir);
        let mut by_partition: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
        for file in &files {
            assert!(!file.contains("+tmp"), "an in-progress file was left behind: {file}");
            let (dir, name) = file.rsplit_once('/').unwrap();
            let parts: Vec<&str> = name.trim_end_matches(".json").split('+').collect();
            by_partition
                .entry(dir.to_string())
                .or_default()
                .push((parts[2].parse().unwrap(), parts[3].parse().unwrap()));
        }
        for (dir, mut ranges) in by_partition {
            ranges.sort();
            let mut next = 0;
            for (start, end) in ranges {
                assert_eq!(start, next, "{dir}: files must follow each other without gap or overlap");
                next = end + 1;
            }
        }
        self.shell(&["-cat", &format!("{topic_dir}/*/*")]).lines().map(str::to_string).collect()
    }

    /// Files the NameNode reports as still open for write (a lease not released).
    pub fn open_files(&self) -> String {
        let output = self
            .java("org.apache.hadoop.hdfs.tools.DFSck")
            .args(["/", "-openforwrite"])
            .output()
            .expect("java runs");
        let report = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(report.contains("Status:"), "fsck failed: {report}{}", String::from_utf8_lossy(&output.stderr));
        report.lines().filter(|l| l.contains("OPENFORWRITE")).collect::<Vec<_>>().join("\n")
    }
}

async fn probe_write(client: &hdfs_native::Client) -> hdfs_native::Result<()> {
    let options = hdfs_native::WriteOptions::default().overwrite(true);
    let mut writer = client.create("/.sluice-test-probe", options).await?;
    writer.write_bytes(bytes::Bytes::from_static(b"ok")).await?;
    writer.close().await?;
    client.delete("/.sluice-test-probe", false).await?;
    Ok(())
}

impl Drop for HdfsCluster {
    fn drop(&mut self) {
        for child in [self.namenode.take(), self.datanode.take()].into_iter().flatten() {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `core-site.xml` and `hdfs-site.xml` for a one-node cluster on loopback, and the empty
/// `webapps/` folders the daemons' HTTP servers insist on.
fn write_config(root: &Path, port: u16) {
    let conf = root.join("conf");
    std::fs::create_dir_all(&conf).unwrap();
    for webapp in ["hdfs", "datanode", "secondary"] {
        std::fs::create_dir_all(root.join("webroot/webapps").join(webapp)).unwrap();
    }
    let site = |properties: &[(&str, String)]| {
        let body: String = properties
            .iter()
            .map(|(k, v)| format!("  <property><name>{k}</name><value>{v}</value></property>\n"))
            .collect();
        format!("<?xml version=\"1.0\"?>\n<configuration>\n{body}</configuration>\n")
    };
    let dir = |name: &str| format!("file://{}", root.join(name).display());
    std::fs::write(
        conf.join("core-site.xml"),
        site(&[
            ("fs.defaultFS", format!("hdfs://127.0.0.1:{port}")),
            ("hadoop.tmp.dir", root.join("tmp").display().to_string()),
        ]),
    )
    .unwrap();
    let loopback = "127.0.0.1:0".to_string();
    std::fs::write(
        conf.join("hdfs-site.xml"),
        site(&[
            ("dfs.namenode.name.dir", dir("name")),
            ("dfs.datanode.data.dir", dir("data")),
            ("dfs.replication", "1".into()),
            ("dfs.webhdfs.enabled", "false".into()),
            ("dfs.permissions.enabled", "false".into()),
            ("dfs.namenode.rpc-bind-host", "127.0.0.1".into()),
            ("dfs.namenode.http-address", format!("127.0.0.1:{}", free_port())),
            ("dfs.namenode.secondary.http-address", loopback.clone()),
            ("dfs.datanode.address", loopback.clone()),
            ("dfs.datanode.http.address", loopback.clone()),
            ("dfs.datanode.ipc.address", loopback),
            ("dfs.namenode.safemode.threshold-pct", "0".into()),
            ("dfs.namenode.safemode.extension", "0".into()),
            ("dfs.heartbeat.interval", "1".into()),
        ]),
    )
    .unwrap();
}
