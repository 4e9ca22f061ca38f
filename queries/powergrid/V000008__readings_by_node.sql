-- Each reading enriched with what the database knows about its node: sensor N reports for the
-- telemetry row whose id is N (V000007 keeps those rows current in TELEMETRY).

-- The rows the JDBC source wrote before this file was applied count too.
SET 'auto.offset.reset' = 'earliest';

-- The database's rows as the JDBC source writes them: values without a key.
CREATE STREAM TELEMETRY_ROWS (ID INTEGER, NAME STRING, WATTAGE INTEGER)
  WITH (KAFKA_TOPIC = 'TELEMETRY', VALUE_FORMAT = 'JSON');

-- The latest row of every node, keyed by its id.
CREATE TABLE NODES AS
SELECT ID,
       LATEST_BY_OFFSET(NAME) AS NODE,
       LATEST_BY_OFFSET(WATTAGE) AS RATED_WATTAGE
FROM TELEMETRY_ROWS
GROUP BY ID
EMIT CHANGES;

-- Every reading with its node's name and rated wattage, keyed by the node's id; a reading whose
-- node the database does not know yet keeps NULLs there. Each reading is joined with its node as
-- the database described it at the reading's time.
CREATE STREAM READINGS_BY_NODE AS
SELECT N.ID AS NODE_ID,
       N.NODE,
       N.RATED_WATTAGE,
       S.CORRELATION_ID,
       S.CREATED_AT,
       S.PAYLOAD
FROM STREAM_INGESTION S
LEFT JOIN NODES N ON CAST(EXTRACTJSONFIELD(S.PAYLOAD, '$.sensor_id') AS INTEGER) = N.ID
EMIT CHANGES;
