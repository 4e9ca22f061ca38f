INSERT INTO STREAM_INGESTION (payload, correlation_id, created_at, schema_version) VALUES ('{"sensor_id": 3}', 'abc', 1694902173.12, 1);
INSERT INTO READINGS VALUES ('r1', -2.5, NULL);
