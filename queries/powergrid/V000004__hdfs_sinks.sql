-- Every sensor's topic, and the unstructured text, land in HDFS in Kafka Connect's layout:
-- /grid-wattage/sensor<N>/SENSOR_ID_<N>/partition=<P>/SENSOR_ID_<N>+<P>+<start>+<end>.json
-- and /unorganized/UNORGANIZED/partition=0/UNORGANIZED+0+<start>+<end>.txt.
-- ${hdfs_url} is the NameNode, e.g. hdfs://namenode:9000 (--define hdfs_url=...).

CREATE SINK CONNECTOR `hdfs-sink-sensor-1` WITH (
    'connector.class' = 'io.confluent.connect.hdfs.HdfsSinkConnector',
    'tasks.max' = '1',
    'topics' = 'SENSOR_ID_1',
    'hdfs.url' = '${hdfs_url}',
    'flush.size' = '3',
    'format.class' = 'io.confluent.connect.hdfs.json.JsonFormat',
    'topics.dir' = '/grid-wattage/sensor1',
    'key.converter' = 'org.apache.kafka.connect.storage.StringConverter',
    'value.converter' = 'org.apache.kafka.connect.json.JsonConverter',
    'key.converter.schemas.enable' = 'false',
    'value.converter.schemas.enable' = 'false'
);

CREATE SINK CONNECTOR `hdfs-sink-sensor-2` WITH (
    'connector.class' = 'io.confluent.connect.hdfs.HdfsSinkConnector',
    'tasks.max' = '1',
    'topics' = 'SENSOR_ID_2',
    'hdfs.url' = '${hdfs_url}',
    'flush.size' = '3',
    'format.class' = 'io.confluent.connect.hdfs.json.JsonFormat',
    'topics.dir' = '/grid-wattage/sensor2',
    'key.converter' = 'org.apache.kafka.connect.storage.StringConverter',
    'value.converter' = 'org.apache.kafka.connect.json.JsonConverter',
    'key.converter.schemas.enable' = 'false',
    'value.converter.schemas.enable' = 'false'
);

CREATE SINK CONNECTOR `hdfs-sink-sensor-3` WITH (
    'connector.class' = 'io.confluent.connect.hdfs.HdfsSinkConnector',
    'tasks.max' = '1',
    'topics' = 'SENSOR_ID_3',
    'hdfs.url' = '${hdfs_url}',
    'flush.size' = '3',
    'format.class' = 'io.confluent.connect.hdfs.json.JsonFormat',
    'topics.dir' = '/grid-wattage/sensor3',
    'key.converter' = 'org.apache.kafka.connect.storage.StringConverter',
    'value.converter' = 'org.apache.kafka.connect.json.JsonConverter',
    'key.converter.schemas.enable' = 'false',
    'value.converter.schemas.enable' = 'false'
);

CREATE SINK CONNECTOR `hdfs-sink-sensor-4` WITH (
    'connector.class' = 'io.confluent.connect.hdfs.HdfsSinkConnector',
    'tasks.max' = '1',
    'topics' = 'SENSOR_ID_4',
    'hdfs.url' = '${hdfs_url}',
    'flush.size' = '3',
    'format.class' = 'io.confluent.connect.hdfs.json.JsonFormat',
    'topics.dir' = '/grid-wattage/sensor4',
    'key.converter' = 'org.apache.kafka.connect.storage.StringConverter',
    'value.converter' = 'org.apache.kafka.connect.json.JsonConverter',
    'key.converter.schemas.enable' = 'false',
    'value.converter.schemas.enable' = 'false'
);

CREATE SINK CONNECTOR `hdfs-sink-sensor-5` WITH (
    'connector.class' = 'io.confluent.connect.hdfs.HdfsSinkConnector',
    'tasks.max' = '1',
    'topics' = 'SENSOR_ID_5',
    'hdfs.url' = '${hdfs_url}',
    'flush.size' = '3',
    'format.class' = 'io.confluent.connect.hdfs.json.JsonFormat',
    'topics.dir' = '/grid-wattage/sensor5',
    'key.converter' = 'org.apache.kafka.connect.storage.StringConverter',
    'value.converter' = 'org.apache.kafka.connect.json.JsonConverter',
    'key.converter.schemas.enable' = 'false',
    'value.converter.schemas.enable' = 'false'
);

CREATE SINK CONNECTOR `hdfs-sink-sensor-6` WITH (
    'connector.class' = 'io.confluent.connect.hdfs.HdfsSinkConnector',
    'tasks.max' = '1',
    'topics' = 'SENSOR_ID_6',
    'hdfs.url' = '${hdfs_url}',
    'flush.size' = '3',
    'format.class' = 'io.confluent.connect.hdfs.json.JsonFormat',
    'topics.dir' = '/grid-wattage/sensor6',
    'key.converter' = 'org.apache.kafka.connect.storage.StringConverter',
    'value.converter' = 'org.apache.kafka.connect.json.JsonConverter',
    'key.converter.schemas.enable' = 'false',
    'value.converter.schemas.enable' = 'false'
);

CREATE SINK CONNECTOR `hdfs-sink-unorganized` WITH (
    'connector.class' = 'io.confluent.connect.hdfs.HdfsSinkConnector',
    'tasks.max' = '1',
    'topics' = 'UNORGANIZED',
    'hdfs.url' = '${hdfs_url}',
    'topics.dir' = '/unorganized',
    'flush.size' = '1',
    'rotate.interval.ms' = '10000',
    'format.class' = 'io.confluent.connect.hdfs.string.StringFormat',
    'key.converter' = 'org.apache.kafka.connect.storage.StringConverter',
    'key.converter.schemas.enable' = 'false',
    'value.converter' = 'org.apache.kafka.connect.storage.StringConverter',
    'value.converter.schemas.enable' = 'false'
);
