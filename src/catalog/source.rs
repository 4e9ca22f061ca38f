//! A stream or table: a schema over a Kafka topic, with the formats of its keys and values.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::{
    catalog::types::SqlType,
    error::{Result, SluiceError},
    parser::{ColumnDef, CreateSource, Properties, SourceKind, window::{parse_duration_text, unit_millis}},
};

/// How a key or a value is laid out in a record's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Kafka,
    Delimited,
    /// Nothing: a key or value without columns, never read and written as none.
    None,
}

impl Format {
    pub fn parse(text: &str) -> Result<Format> {
        match text.to_ascii_uppercase().as_str() {
            "JSON" => Ok(Format::Json),
            "KAFKA" => Ok(Format::Kafka),
            "DELIMITED" => Ok(Format::Delimited),
            "NONE" => Ok(Format::None),
            "AVRO" | "PROTOBUF" | "PROTOBUF_NOSR" | "JSON_SR" => Err(
                SluiceError::NotImplemented(format!("the {text} format; use JSON, KAFKA, DELIMITED or NONE")),
            ),
            _ => Err(SluiceError::Plan(format!(
                "Unknown format: {text} (Sluice reads JSON, KAFKA, DELIMITED and NONE)"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "JSON",
            Format::Kafka => "KAFKA",
            Format::Delimited => "DELIMITED",
            Format::None => "NONE",
        }
    }

    /// Why a column of `data_type` cannot be held in this format, if it cannot: ksqlDB's rule
    /// that KAFKA holds one INTEGER, BIGINT, DOUBLE, STRING or BYTES, and DELIMITED no nested
    /// types.
    pub fn refuses(self, data_type: &SqlType) -> Option<String> {
        let refused = match self {
            Format::Json => false,
            Format::Kafka => !matches!(
                data_type,
                SqlType::Integer | SqlType::Bigint | SqlType::Double | SqlType::String | SqlType::Bytes
            ),
            Format::Delimited => data_type.is_nested(),
            // Whether NONE holds columns at all is checked once for all of them.
            Format::None => false,
        };
        refused.then(|| {
            let base = match data_type {
                SqlType::Array(_) => "ARRAY".to_string(),
                SqlType::Map(_) => "MAP".to_string(),
                SqlType::Struct(_) => "STRUCT".to_string(),
                SqlType::Decimal { .. } => "DECIMAL".to_string(),
                other => other.to_string(),
            };
            format!("The '{}' format does not support type '{base}'", self.name())
        })
    }
}

/// Pseudo-columns every stream has besides its declared ones.
pub const ROWTIME: &str = "ROWTIME";
pub const ROWPARTITION: &str = "ROWPARTITION";
pub const ROWOFFSET: &str = "ROWOFFSET";
/// Key pseudo-columns of a windowed table: the bounds of each row's window.
pub const WINDOWSTART: &str = "WINDOWSTART";
pub const WINDOWEND: &str = "WINDOWEND";

/// Whether no declared or aliased column may take `name`: a pseudo-column's.
pub fn is_reserved(name: &str) -> bool {
    [ROWTIME, ROWPARTITION, ROWOFFSET, WINDOWSTART, WINDOWEND].contains(&name)
}

/// How a windowed table's keys carry their window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceWindow {
    /// `[start, end]` of a session: the key holds both bounds.
    pub session: bool,
    /// ksqlDB's window type: `TUMBLING`, `HOPPING` or `SESSION`.
    pub type_name: &'static str,
    /// A time window's size, which gives its end; none for sessions.
    pub size_ms: Option<i64>,
}

impl SourceWindow {
    /// `WINDOW_TYPE` and `WINDOW_SIZE` of a declaration, as ksqlDB checks them.
    fn declared(properties: &Properties) -> Result<Option<Self>> {
        let size = properties.get("WINDOW_SIZE").map(|s| s.as_text());
        let Some(window_type) = properties.get("WINDOW_TYPE").map(|t| t.as_text().to_ascii_uppercase()) else {
            return match size {
                Some(_) => Err(SluiceError::Plan("'WINDOW_SIZE' should not be set for non-windowed sources. Set 'WINDOW_TYPE' as well.".into())),
                None => Ok(None),
            };
        };
        let type_name = match window_type.as_str() {
            "TUMBLING" => "TUMBLING",
            "HOPPING" => "HOPPING",
            "SESSION" => "SESSION",
            other => {
                return Err(SluiceError::Plan(format!(
                    "Invalid value {other} for property WINDOW_TYPE: String must be one of: SESSION, HOPPING, TUMBLING, null"
                )));
            }
        };
        let session = type_name == "SESSION";
        let size_ms = match (session, size) {
            (true, Some(_)) => return Err(SluiceError::Plan("'WINDOW_SIZE' should not be set for SESSION windows.".into())),
            (true, None) => None,
            (false, None) => {
                return Err(SluiceError::Plan(format!("'WINDOW_SIZE' is required for {type_name} windows.")));
            }
            (false, Some(text)) => Some(parse_duration_text(&text).filter(|ms| *ms > 0).ok_or_else(|| {
                let unit = text.split_whitespace().nth(1).unwrap_or_default().to_ascii_uppercase();
                SluiceError::Plan(format!(
                    "Configuration WINDOW_SIZE is invalid: Invalid duration: '{text}'. {}",
                    if unit_millis(&unit).is_none() && !unit.is_empty() {
                        format!("Unknown time unit: '{unit}'")
                    } else {
                        "Expected a positive number and a time unit, such as '30 SECONDS'".to_string()
                    }
                ))
            })?),
        };
        Ok(Some(Self { session, type_name, size_ms }))
    }
}

/// A DELIMITED format's delimiter from property `name` (`VALUE_DELIMITER`, `KEY_DELIMITER`): one
/// character, or `TAB` or `SPACE`; a comma when absent.
fn delimiter(properties: &Properties, name: &str) -> Result<u8> {
    match properties.get(name).map(|d| d.as_text()) {
        None => Ok(b','),
        Some(d) if d.eq_ignore_ascii_case("TAB") => Ok(b'\t'),
        Some(d) if d.eq_ignore_ascii_case("SPACE") => Ok(b' '),
        Some(d) if d.trim().is_empty() => Err(SluiceError::Plan(format!(
            "Configuration {name} is invalid: Delimiter cannot be empty, if you meant to have a tab or space for delimiter, please use the special values 'TAB' or 'SPACE'\nExample valid value: ';'"
        ))),
        Some(d) if d.len() == 1 => Ok(d.as_bytes()[0]),
        Some(d) => Err(SluiceError::Plan(format!(
            "Configuration {name} is invalid: Invalid delimiter value: '{d}'. Delimiter must be a single character or TAB,SPACE\nExample valid value: ';'"
        ))),
    }
}

/// A declared or query-created stream or table.
#[derive(Debug, Clone)]
pub struct SourceDef {
    pub name: String,
    pub kind: SourceKind,
    /// Declared with `CREATE SOURCE`: nothing may write to it.
    pub read_only: bool,
    /// Created by a `CREATE … AS SELECT`, whose query writes its topic.
    pub created_by_query: bool,
    pub topic: String,
    /// Key columns first, as ksqlDB orders them, then value columns.
    pub columns: Vec<ColumnDef>,
    pub key_format: Format,
    pub value_format: Format,
    pub value_delimiter: u8,
    /// `KEY_DELIMITER`: what separates the fields of a DELIMITED key.
    pub key_delimiter: u8,
    /// A single value column is written as its bare value (`WRAP_SINGLE_VALUE=false`), not an
    /// object holding it. Reading takes either.
    pub wrap_single_value: bool,
    /// A value column whose BIGINT or TIMESTAMP value becomes ROWTIME.
    pub timestamp_column: Option<String>,
    /// `TIMESTAMP_FORMAT`: the Java pattern in which the STRING timestamp column is read.
    pub timestamp_format: Option<String>,
    /// The statement that created it, as the user wrote it.
    pub statement: String,
    /// A windowed table's: each key carries its window.
    pub window: Option<SourceWindow>,
}

impl SourceDef {
    /// The stream or table the statement `sql`, a `CREATE STREAM|TABLE (…)`, declares.
    pub fn from_create(sql: &str) -> Result<SourceDef> {
        match crate::parser::KsqlParser::parse_one(sql)?.statement {
            crate::parser::Statement::CreateSource(create) => Self::declared(&create, sql),
            other => Err(SluiceError::Plan(format!("{other} declares no stream or table"))),
        }
    }

    /// The stream or table a `CREATE STREAM|TABLE (…)` declares; a table needs a PRIMARY KEY.
    pub fn declared(create: &CreateSource, statement: &str) -> Result<SourceDef> {
        let mut source = Self::from_declaration(&create.name, create.columns.clone(), &create.properties, None, statement)?;
        // ksqlDB reads the columns of a declaration without any from a schema registry, which
        // none of Sluice's formats has.
        if create.columns.is_empty() {
            return Err(SluiceError::Plan("No columns supplied.".into()));
        }
        if source.window.is_some() && source.key_columns().next().is_none() {
            return Err(SluiceError::Plan("Windowed sources require a key column.".into()));
        }
        if create.kind == SourceKind::Table && source.key_columns().next().is_none() {
            return Err(SluiceError::Plan("Tables require a PRIMARY KEY. Please define the PRIMARY KEY.".into()));
        }
        source.kind = create.kind;
        source.read_only = create.read_only;
        Ok(source)
    }

    /// Builds a stream from its declaration, checking the properties ksqlDB checks.
    pub fn from_declaration(
        name: &str,
        columns: Vec<ColumnDef>,
        properties: &Properties,
        default_topic: Option<&str>,
        statement: &str,
    ) -> Result<SourceDef> {
        const KNOWN: [&str; 14] = [
            "KAFKA_TOPIC",
            "VALUE_FORMAT",
            "KEY_FORMAT",
            "FORMAT",
            "PARTITIONS",
            "REPLICAS",
            "TIMESTAMP",
            "TIMESTAMP_FORMAT",
            "VALUE_DELIMITER",
            "KEY_DELIMITER",
            "WRAP_SINGLE_VALUE",
            "RETENTION_MS",
            "WINDOW_TYPE",
            "WINDOW_SIZE",
        ];
        for (key, _) in &properties.0 {
            if !KNOWN.contains(&key.to_ascii_uppercase().as_str()) {
                return Err(SluiceError::Plan(format!(
                    "Invalid config variable(s) in the WITH clause: {key}"
                )));
            }
        }
        let topic = match (properties.get("KAFKA_TOPIC"), default_topic) {
            (Some(topic), _) => topic.as_text(),
            (None, Some(default)) => default.to_string(),
            (None, None) => {
                return Err(SluiceError::Plan(
                    "Missing required property \"KAFKA_TOPIC\" which has no default value.".into(),
                ));
            }
        };
        let format = properties.get("FORMAT").map(|f| f.as_text());
        for side in ["KEY", "VALUE"] {
            if format.is_some() && properties.get(&format!("{side}_FORMAT")).is_some() {
                return Err(SluiceError::Plan(format!(
                    "Cannot supply both '{side}_FORMAT' and 'FORMAT' properties, as 'FORMAT' sets both key and value formats. Either use just 'FORMAT', or use 'KEY_FORMAT' and 'VALUE_FORMAT'."
                )));
            }
        }
        let value_format = match properties.get("VALUE_FORMAT").map(|f| f.as_text()).or(format.clone()) {
            Some(f) => Format::parse(&f)?,
            None if default_topic.is_some() => Format::Json,
            None => {
                return Err(SluiceError::Plan(
                    "Statement is missing the 'VALUE_FORMAT' property from the WITH clause. Either provide one or set a default via the 'ksql.persistence.default.format.value' config.".into(),
                ));
            }
        };
        let key_format = match properties.get("KEY_FORMAT").map(|f| f.as_text()).or(format) {
            Some(f) => Format::parse(&f)?,
            None => Format::Kafka,
        };
        let value_delimiter = delimiter(properties, "VALUE_DELIMITER")?;
        let key_delimiter = delimiter(properties, "KEY_DELIMITER")?;
        for (format, property) in [(value_format, "VALUE_DELIMITER"), (key_format, "KEY_DELIMITER")] {
            if format != Format::Delimited && properties.get(property).is_some() {
                return Err(SluiceError::Plan(format!("{} does not support the following configs: [delimiter]", format.name())));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for column in &columns {
            if !seen.insert(column.name.clone()) {
                return Err(SluiceError::Plan(format!(
                    "Duplicate column names: {}",
                    column.name
                )));
            }
            if is_reserved(&column.name) {
                return Err(SluiceError::Plan(format!(
                    "'{}' is a reserved column name. You cannot use it as a name for a column.",
                    column.name
                )));
            }
        }
        if let Some(column) = columns.iter().find(|c| c.key && c.data_type.has_map()) {
            return Err(map_key_refused(&column.name, &column.data_type));
        }
        for (format, key) in [(key_format, true), (value_format, false)] {
            let held: Vec<String> = columns.iter().filter(|c| c.key == key).map(|c| format!("`{}` {}{}", c.name, c.data_type, if key { " KEY" } else { "" })).collect();
            if format == Format::None && !held.is_empty() {
                return Err(SluiceError::Plan(format!(
                    "The 'NONE' format can only be used when no columns are defined. Got: [{}]",
                    held.join(", ")
                )));
            }
        }
        for column in columns.iter().filter(|c| c.header.is_none()) {
            let format = if column.key { key_format } else { value_format };
            if let Some(reason) = format.refuses(&column.data_type) {
                return Err(SluiceError::Plan(format!("{reason}, column: `{}`", column.name)));
            }
        }
        if key_format == Format::Kafka && columns.iter().filter(|c| c.key).count() > 1 {
            let keys: Vec<String> = columns.iter().filter(|c| c.key).map(|c| format!("`{}` {} KEY", c.name, c.data_type)).collect();
            let keys = keys.join(", ");
            return Err(SluiceError::Plan(format!(
                "Key format does not support schema.\nformat: KAFKA\nschema: Persistence{{columns=[{keys}], features=[]}}\nreason: The 'KAFKA' format only supports a single field. Got: [{keys}]"
            )));
        }
        if value_format == Format::Kafka && columns.iter().filter(|c| c.in_value()).count() > 1 {
            return Err(SluiceError::Plan(
                "The 'KAFKA' format only supports a single field. Got: more than one value column".into(),
            ));
        }
        let timestamp_column = properties.get("TIMESTAMP").map(|t| t.as_text().to_ascii_uppercase());
        let timestamp_format = properties.get("TIMESTAMP_FORMAT").map(|f| f.as_text());
        if let Some(format) = &timestamp_format {
            if timestamp_column.is_none() {
                return Err(SluiceError::Plan("TIMESTAMP_FORMAT may only be set with TIMESTAMP, the column it reads".into()));
            }
            crate::java_time::Pattern::parse(format)
                .map_err(|e| SluiceError::Plan(format!("Invalid TIMESTAMP_FORMAT '{format}': {e}")))?;
        }
        if let Some(ts) = &timestamp_column {
            match columns.iter().find(|c| &c.name == ts) {
                Some(c) if matches!(c.data_type, SqlType::Bigint | SqlType::Timestamp) => {}
                Some(c) if c.data_type == SqlType::String && timestamp_format.is_some() => {}
                Some(_) => {
                    return Err(SluiceError::Plan(format!(
                        "Timestamp column, `{ts}`, should be LONG(INT64), TIMESTAMP, or a String with a timestamp_format specified."
                    )));
                }
                None => {
                    return Err(SluiceError::Plan(format!(
                        "The TIMESTAMP column set in the WITH clause does not exist in the schema: '{ts}'"
                    )));
                }
            }
        }
        let wrap_single_value = match properties.get("WRAP_SINGLE_VALUE").map(|w| w.as_text().to_ascii_lowercase()) {
            None => true,
            Some(w) if w == "true" => true,
            Some(w) if w == "false" => false,
            Some(other) => {
                return Err(SluiceError::Plan(format!("Invalid value {other} for property WRAP_SINGLE_VALUE: expected true or false")));
            }
        };
        // ksqlDB's checks of an explicit WRAP_SINGLE_VALUE: KAFKA and DELIMITED values cannot
        // be wrapped, and only a single value column can be unwrapped or wrapped.
        if properties.get("WRAP_SINGLE_VALUE").is_some() {
            if wrap_single_value && value_format != Format::Json {
                return Err(SluiceError::Plan(format!(
                    "Format '{}' does not support 'WRAP_SINGLE_VALUE' set to 'true'.",
                    value_format.name()
                )));
            }
            if columns.iter().filter(|c| c.in_value()).count() > 1 {
                return Err(SluiceError::Plan("'WRAP_SINGLE_VALUE' is only valid for single-field value schemas".into()));
            }
        }
        let mut ordered: Vec<ColumnDef> = columns.iter().filter(|c| c.key).cloned().collect();
        ordered.extend(columns.into_iter().filter(|c| !c.key));
        Ok(SourceDef {
            name: name.to_string(),
            kind: SourceKind::Stream,
            read_only: false,
            created_by_query: false,
            topic,
            columns: ordered,
            key_format,
            value_format,
            value_delimiter,
            key_delimiter,
            wrap_single_value,
            timestamp_column,
            timestamp_format,
            statement: statement.to_string(),
            window: SourceWindow::declared(properties)?,
        })
    }

    /// What reading the stream depends on: its topic and how its records are decoded. Two
    /// streams with one identity can share a scan; a stream dropped and declared again over
    /// another topic or schema has another identity, whatever its name.
    pub fn source_identity(&self) -> String {
        format!(
            "{:?}",
            (self.kind, &self.topic, &self.columns, self.key_format, self.value_format, self.value_delimiter, self.key_delimiter, &self.timestamp_column, &self.timestamp_format, self.window)
        )
    }

    pub fn is_table(&self) -> bool {
        self.kind == SourceKind::Table
    }

    /// Whether the table is kept in memory for pull queries: a `CREATE SOURCE TABLE`, or a
    /// table a query creates. A plain `CREATE TABLE` is not, as in ksqlDB.
    pub fn is_materialized(&self) -> bool {
        self.is_table() && (self.read_only || self.created_by_query)
    }

    pub fn key_columns(&self) -> impl Iterator<Item = &ColumnDef> {
        self.columns.iter().filter(|c| c.key)
    }

    /// The columns the value format holds.
    pub fn value_columns(&self) -> impl Iterator<Item = &ColumnDef> {
        self.columns.iter().filter(|c| c.in_value())
    }

    /// The columns besides the key: the value's and the headers', as declared.
    pub fn non_key_columns(&self) -> impl Iterator<Item = &ColumnDef> {
        self.columns.iter().filter(|c| !c.key)
    }

    /// The columns read from the record's headers.
    pub fn header_columns(&self) -> impl Iterator<Item = &ColumnDef> {
        self.columns.iter().filter(|c| c.header.is_some())
    }

    /// The schema queries see: declared columns, then the pseudo-columns (a windowed table's
    /// window bounds last).
    pub fn row_schema(&self) -> SchemaRef {
        let mut fields: Vec<Field> = self
            .columns
            .iter()
            .map(|c| Field::new(&c.name, c.data_type.to_arrow(), true))
            .collect();
        fields.push(Field::new(ROWTIME, DataType::Int64, false));
        fields.push(Field::new(ROWPARTITION, DataType::Int32, false));
        fields.push(Field::new(ROWOFFSET, DataType::Int64, false));
        if self.window.is_some() {
            fields.push(Field::new(WINDOWSTART, DataType::Int64, false));
            fields.push(Field::new(WINDOWEND, DataType::Int64, false));
        }
        Arc::new(Schema::new(fields))
    }
}

/// ksqlDB's refusal of a key column `name` whose type holds a map.
pub fn map_key_refused(name: &str, data_type: &SqlType) -> SluiceError {
    SluiceError::Plan(format!(
        "Map keys, including types that contain maps, are not supported as they may lead to unexpected behavior due to inconsistent serialization. Key column name: `{name}`. Column type: {data_type}. See https://github.com/confluentinc/ksql/issues/6621 for more."
    ))
}
