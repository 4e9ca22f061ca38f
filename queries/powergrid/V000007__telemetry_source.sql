-- The database's telemetry table, kept current in the TELEMETRY topic and landed in HDFS, in
-- place of the one-off Sqoop import (`sluice import` still does that: see the README).
-- ${postgres_url} is the database, e.g. jdbc:postgresql://postgresql:5432/telemetry, with
-- ${postgres_user} and ${postgres_password} (--define name=value each).

CREATE SOURCE CONNECTOR `jdbc-source-telemetry` WITH (
    'connector.class' = 'io.confluent.connect.jdbc.JdbcSourceConnector',
    'connection.url' = '${postgres_url}',
    'connection.user' = '${postgres_user}',
    'connection.password' = '${postgres_password}',
    'mode' = 'incrementing',
    'incrementing.column.name' = 'id',
    'query' = 'SELECT id, name, wattage FROM telemetry',
    'topic.prefix' = 'TELEMETRY',
    'poll.interval.ms' = '5000',
    'value.converter' = 'org.apache.kafka.connect.json.JsonConverter',
    'value.converter.schemas.enable' = 'false'
);

CREATE SINK CONNECTOR `hdfs-sink-telemetry` WITH (
    'connector.class' = 'io.confluent.connect.hdfs.HdfsSinkConnector',
    'tasks.max' = '1',
    'topics' = 'TELEMETRY',
    'hdfs.url' = '${hdfs_url}',
    'flush.size' = '1',
    'rotate.interval.ms' = '10000',
    'format.class' = 'io.confluent.connect.hdfs.json.JsonFormat',
    'topics.dir' = '/telemetry',
    'key.converter' = 'org.apache.kafka.connect.storage.StringConverter',
    'value.converter' = 'org.apache.kafka.connect.json.JsonConverter',
    'key.converter.schemas.enable' = 'false',
    'value.converter.schemas.enable' = 'false'
);
