-- Wattage per sensor per minute: how many readings, their average and their peak, in tumbling
-- one-minute windows. Each window takes late readings for 10 minutes after it ends; a reading
-- later than that is dropped and counted on the query (DESCRIBE WATTAGE_PER_MINUTE EXTENDED).
CREATE TABLE WATTAGE_PER_MINUTE AS
SELECT EXTRACTJSONFIELD(PAYLOAD, '$.sensor_id') AS SENSOR,
       WINDOWSTART AS WINDOW_START,
       WINDOWEND AS WINDOW_END,
       COUNT(*) AS READINGS,
       AVG(CAST(EXTRACTJSONFIELD(PAYLOAD, '$.modality') AS DOUBLE)) AS AVG_WATTAGE,
       MAX(CAST(EXTRACTJSONFIELD(PAYLOAD, '$.modality') AS DOUBLE)) AS MAX_WATTAGE
FROM STREAM_INGESTION
WINDOW TUMBLING (SIZE 1 MINUTE, GRACE PERIOD 10 MINUTES)
GROUP BY EXTRACTJSONFIELD(PAYLOAD, '$.sensor_id')
EMIT CHANGES;
