"""Drives sluice-server with ksql-python-ng, a client written for ksqlDB, unmodified.

Usage: ksql_python_ng.py SERVER_URL BOOTSTRAP_SERVERS [USER PASSWORD]
With USER and PASSWORD it authenticates as the library does (HTTP Basic). Prints '1 passed, 0 failed' when every check holds; raises otherwise.
"""
import json
import sys

from kafka import KafkaProducer
from ksql import KSQLAPI

url, bootstrap = sys.argv[1], sys.argv[2]
credentials = dict(zip(("api_key", "secret"), sys.argv[3:5]))
client = KSQLAPI(url, **credentials)  # checks the server version through /info

created = client.ksql(
    "CREATE STREAM STREAM_INGESTION (payload STRING, correlation_id STRING, created_at DOUBLE, schema_version INTEGER) "
    "WITH (KAFKA_TOPIC = 'INGESTION', VALUE_FORMAT = 'JSON', PARTITIONS = 1);"
)
assert created[0]["commandStatus"]["status"] == "SUCCESS", created
routed = client.ksql(
    "CREATE STREAM SENSOR_ID_3 AS SELECT * FROM STREAM_INGESTION WHERE EXTRACTJSONFIELD(PAYLOAD, '$.sensor_id') = '3';",
    stream_properties={"auto.offset.reset": "earliest"},
)
assert routed[0]["commandStatus"]["queryId"].startswith("CSAS_SENSOR_ID_3_"), routed
streams = client.ksql("SHOW STREAMS;")
assert {s["name"] for s in streams[0]["streams"]} == {"STREAM_INGESTION", "SENSOR_ID_3"}, streams

producer = KafkaProducer(bootstrap_servers=bootstrap)
for sensor in (3, 4, 3):
    record = {"payload": json.dumps({"sensor_id": sensor}), "correlation_id": f"c{sensor}", "created_at": 1.5, "schema_version": 1}
    producer.send("INGESTION", key=str(sensor).encode(), value=json.dumps(record).encode())
producer.flush()

rows = []
for chunk in client.query(
    "SELECT CORRELATION_ID, EXTRACTJSONFIELD(PAYLOAD, '$.sensor_id') AS SENSOR FROM SENSOR_ID_3 EMIT CHANGES LIMIT 2;",
    stream_properties={"auto.offset.reset": "earliest"},
    use_http2=True,
):
    rows.append(chunk)
text = "".join(rows)
lines = [json.loads(line) for line in text.splitlines() if line.strip()]
assert lines[0]["columnNames"] == ["CORRELATION_ID", "SENSOR"], lines
assert lines[1:] == [["c3", "3"], ["c3", "3"]], lines
# ksql.utils finds a stream's queries through 'DESCRIBE <name> EXTENDED' (ksqlDB 0.20's form)
# and drops it with them.
from ksql.utils import drop_stream, get_dependent_queries

reads, writes = get_dependent_queries(client, "SENSOR_ID_3")
assert (reads, writes) == ([], [routed[0]["commandStatus"]["queryId"]]), (reads, writes)
reads, writes = get_dependent_queries(client, "STREAM_INGESTION")
assert writes == [] and reads == [routed[0]["commandStatus"]["queryId"]], (reads, writes)
drop_stream(client, "SENSOR_ID_3")
streams = client.ksql("SHOW STREAMS;")
assert {s["name"] for s in streams[0]["streams"]} == {"STREAM_INGESTION"}, streams
print("1 passed, 0 failed")
