-- New value columns for a declared stream or table; records written before read them as NULL.
ALTER STREAM STREAM_INGESTION ADD COLUMN SITE STRING;
ALTER TABLE NODES ADD COLUMN REGION STRING, ADD VOLTAGE_KV DOUBLE;
