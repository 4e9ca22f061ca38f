CREATE SINK CONNECTOR `hdfs-sink-sensor-3` WITH (
    'connector.class' = 'io.confluent.connect.hdfs.HdfsSinkConnector',
    'tasks.max' = '1',
    'topics' = 'SENSOR_ID_3',
    'hdfs.url' = 'hdfs://namenode:9000',
    'flush.size' = '3',
    'format.class' = 'io.confluent.connect.hdfs.json.JsonFormat',
    'topics.dir' = '/grid-wattage/sensor3',
    'key.converter' = 'org.apache.kafka.connect.storage.StringConverter',
    'value.converter' = 'org.apache.kafka.connect.json.JsonConverter',
    'key.converter.schemas.enable' = 'false',
    'value.converter.schemas.enable' = 'false'
);
CREATE SINK CONNECTOR IF NOT EXISTS HDFS_SINK_UNORGANIZED WITH (
    'connector.class' = 'HdfsSinkConnector',
    'topics' = 'UNORGANIZED',
    'store.url' = 'file:///var/lib/sluice/landing',
    'topics.dir' = '/unorganized',
    'flush.size' = 1,
    'rotate.interval.ms' = 10000,
    'format.class' = 'io.confluent.connect.hdfs.string.StringFormat'
);
CREATE SOURCE CONNECTOR `jdbc-telemetry` WITH (
    'connector.class' = 'io.confluent.connect.jdbc.JdbcSourceConnector',
    'connection.url' = 'jdbc:postgresql://postgresql:5432/telemetry',
    'connection.user' = 'root',
    'connection.password' = 'pwd1234',
    'mode' = 'incrementing',
    'incrementing.column.name' = 'id',
    'table.whitelist' = 'telemetry',
    'topic.prefix' = 'jdbc-'
);
