-- The stream over the topic every sensor publishes to. PARTITIONS creates INGESTION when it
-- does not exist yet (the seed's statement, plus that).
CREATE
STREAM STREAM_INGESTION (
  payload STRING,
  correlation_id STRING,
  created_at DOUBLE,
  schema_version INTEGER
) WITH (KAFKA_TOPIC = 'INGESTION', VALUE_FORMAT = 'JSON', PARTITIONS = 3);
