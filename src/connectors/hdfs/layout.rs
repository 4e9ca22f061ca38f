//! Kafka Connect's HDFS file layout: committed files at
//! `<topics.dir>/<topic>/partition=<N>/<topic>+<N>+<start>+<end><ext>` with zero-padded
//! inclusive offsets, and in-progress files under `<topics.dir>/+tmp/<topic>/partition=<N>/`.

/// Paths of one topic-partition inside a sink's `topics.dir`.
#[derive(Debug, Clone)]
pub struct PartitionLayout {
    topics_dir: String,
    topic: String,
    partition: i32,
    pad: usize,
    extension: &'static str,
}

impl PartitionLayout {
    pub fn new(topics_dir: &str, topic: &str, partition: i32, pad: usize, extension: &'static str) -> Self {
        Self {
            topics_dir: topics_dir.trim_end_matches('/').to_string(),
            topic: topic.to_string(),
            partition,
            pad,
            extension,
        }
    }

    /// The directory committed files go to.
    pub fn committed_dir(&self) -> String {
        format!("{}/{}/partition={}", self.topics_dir, self.topic, self.partition)
    }

    /// The directory in-progress files are written in; nothing in it is ever read back.
    pub fn temp_dir(&self) -> String {
        format!("{}/+tmp/{}/partition={}", self.topics_dir, self.topic, self.partition)
    }

    /// A fresh in-progress file name, unique per writer.
    pub fn temp_file(&self) -> String {
        format!("{}/{}_tmp{}", self.temp_dir(), uuid::Uuid::new_v4(), self.extension)
    }

    /// The committed path of the records `start..=end`.
    pub fn committed_file(&self, start: i64, end: i64) -> String {
        let pad = self.pad;
        format!(
            "{}/{}+{}+{start:0pad$}+{end:0pad$}{}",
            self.committed_dir(),
            self.topic,
            self.partition,
            self.extension
        )
    }

    /// The last offset of a committed file of this topic-partition named `name`, if it is one.
    /// Any extension is accepted, as Connect's recovery does, so a change of `format.class`
    /// never re-writes what an earlier format committed.
    pub fn end_offset_of(&self, name: &str) -> Option<i64> {
        let rest = name.strip_prefix(&self.topic)?.strip_prefix('+')?;
        let mut parts = rest.splitn(3, '+');
        let partition: i32 = parts.next()?.parse().ok()?;
        let _start: i64 = parts.next()?.parse().ok()?;
        let end_and_extension = parts.next()?;
        let digits = end_and_extension
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(end_and_extension.len());
        let (end, extension) = end_and_extension.split_at(digits);
        let valid_extension = extension.is_empty()
            || (extension.starts_with('.') && extension[1..].chars().all(|c| c.is_alphanumeric() || c == '_'));
        (partition == self.partition && valid_extension).then(|| end.parse().ok()).flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_names_match_the_connect_layout() {
        let layout = PartitionLayout::new("/grid-wattage/sensor3", "SENSOR_ID_3", 0, 10, ".json");
        assert_eq!(
            layout.committed_file(0, 2),
            "/grid-wattage/sensor3/SENSOR_ID_3/partition=0/SENSOR_ID_3+0+0000000000+0000000002.json"
        );
        assert!(layout.temp_file().starts_with("/grid-wattage/sensor3/+tmp/SENSOR_ID_3/partition=0/"));
        assert!(layout.temp_file().ends_with("_tmp.json"));
    }

    #[test]
    fn offsets_wider_than_the_pad_are_written_in_full() {
        let layout = PartitionLayout::new("topics", "t", 1, 3, ".txt");
        assert_eq!(layout.committed_file(5, 12345), "topics/t/partition=1/t+1+005+12345.txt");
    }

    #[test]
    fn recovery_reads_end_offsets_of_this_partition_only() {
        let layout = PartitionLayout::new("topics", "SENSOR_ID_1", 2, 10, ".json");
        assert_eq!(layout.end_offset_of("SENSOR_ID_1+2+0000000003+0000000005.json"), Some(5));
        assert_eq!(layout.end_offset_of("SENSOR_ID_1+2+0000000003+0000000005.txt"), Some(5));
        assert_eq!(layout.end_offset_of("SENSOR_ID_1+2+0000000003+0000000005"), Some(5));
        assert_eq!(layout.end_offset_of("SENSOR_ID_1+1+0000000003+0000000005.json"), None);
        assert_eq!(layout.end_offset_of("SENSOR_ID_10+2+0000000003+0000000005.json"), None);
        assert_eq!(layout.end_offset_of("2c9f_tmp.json"), None);
        assert_eq!(layout.end_offset_of("SENSOR_ID_1+2+x+5.json"), None);
    }
}
