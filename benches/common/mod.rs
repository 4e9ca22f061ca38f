//! What the benchmarks share: running a variant in a process of its own, and that process's
//! own CPU time and peak resident memory, read from `/proc/self`, so each is measured apart.

use std::process::Command;

use serde_json::Value;

/// Runs this benchmark binary again with `variant` as its argument, and returns the JSON it
/// printed: the variant's own measurements.
pub fn run_variant(variant: &str) -> Value {
    let out = Command::new(std::env::current_exe().unwrap()).arg(variant).output().unwrap();
    assert!(out.status.success(), "{variant} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// CPU seconds (user and system) this process has used.
pub fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// This process's peak resident memory (`VmHWM`), in MB.
pub fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}
