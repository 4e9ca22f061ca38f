-- Unstructured text lines (the seed's Flume feed) land in UNORGANIZED, one line per record.
CREATE STREAM UNORGANIZED_TEXT (LINE STRING)
  WITH (KAFKA_TOPIC = 'UNORGANIZED', VALUE_FORMAT = 'KAFKA', PARTITIONS = 1);
