//! Connect's string configs read key by key: typed getters that name the key in their errors,
//! and a check that every key given was read.

use std::{collections::BTreeMap, time::Duration};

use regex::Regex;

use crate::error::{Result, SluiceError};

/// A comma-separated list of `key`'s patterns, each anchored at both ends as Connect's
/// include and exclude lists are.
pub fn anchored_patterns(key: &str, text: &str) -> Result<Vec<Regex>> {
    text.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            Regex::new(&format!("^(?:{p})$")).map_err(|e| SluiceError::Config(format!("{key} pattern '{p}' is not a valid regex: {e}")))
        })
        .collect()
}

/// Reads keys of a config, remembering which were read.
pub struct Keys<'a> {
    config: &'a BTreeMap<String, String>,
    used: Vec<&'a str>,
}

impl<'a> Keys<'a> {
    pub fn new(config: &'a BTreeMap<String, String>) -> Keys<'a> {
        Keys { config, used: Vec::new() }
    }

    /// Marks `keys` as read: Connect's keys that change nothing in what a connector does.
    pub fn accept(&mut self, keys: &[&str]) {
        for key in keys {
            let _ = self.get(key);
        }
    }

    pub fn get(&mut self, key: &str) -> Option<String> {
        let (k, v) = self.config.get_key_value(key)?;
        self.used.push(k.as_str());
        Some(v.trim().to_string())
    }

    pub fn required(&mut self, key: &str) -> Result<String> {
        self.get(key).ok_or_else(|| SluiceError::Config(format!("{key} is required")))
    }

    pub fn number(&mut self, key: &str) -> Result<Option<i64>> {
        self.get(key)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| SluiceError::Config(format!("{key} must be a whole number, not '{v}'")))
            })
            .transpose()
    }

    /// A whole number from `min` to `max`.
    pub fn number_in(&mut self, key: &str, min: i64, max: i64) -> Result<Option<i64>> {
        match self.number(key)? {
            Some(n) if !(min..=max).contains(&n) => Err(SluiceError::Config(if max == i64::MAX {
                format!("{key} must be at least {min}, not {n}")
            } else {
                format!("{key} must be from {min} to {max}, not {n}")
            })),
            n => Ok(n),
        }
    }

    /// A `*.ms` interval: `-1` (Connect's default) is off, any other value must be positive.
    pub fn interval(&mut self, key: &str) -> Result<Option<Duration>> {
        match self.number(key)? {
            None | Some(-1) => Ok(None),
            Some(ms) if ms > 0 => Ok(Some(Duration::from_millis(ms as u64))),
            Some(ms) => Err(SluiceError::Config(format!("{key} must be -1 (off) or a positive number of milliseconds, not {ms}"))),
        }
    }

    pub fn boolean(&mut self, key: &str) -> Result<Option<bool>> {
        self.get(key)
            .map(|v| match v.to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(SluiceError::Config(format!("{key} must be true or false, not '{v}'"))),
            })
            .transpose()
    }

    /// Fails naming every key nothing read, as `connector` (e.g. "the HDFS sink") says it.
    pub fn reject_unused(&self, connector: &str) -> Result<()> {
        let unknown: Vec<&str> = self
            .config
            .keys()
            .map(String::as_str)
            .filter(|k| !self.used.contains(k))
            .collect();
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(SluiceError::Config(format!(
                "unknown options for {connector}: {}",
                unknown.join(", ")
            )))
        }
    }
}
