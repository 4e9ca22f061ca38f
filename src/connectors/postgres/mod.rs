//! PostgreSQL: a connection from the JDBC URL Sqoop and Kafka Connect users already write, and
//! a query's rows streamed out with `COPY … TO STDOUT`.

mod columns;
mod copy_text;
mod jdbc_url;
mod text_values;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use tokio_postgres::{Client, NoTls};

use crate::error::{Result, SluiceError};

pub use columns::{Column, ColumnKind, describe};
pub use copy_text::{CopyRow, CopyTextRows, SESSION_SETTINGS};
pub use jdbc_url::JdbcUrl;
pub use text_values::{array_elements, bytea, days_since_epoch, interval_micros, timestamp_micros, unscaled_bytes};

/// Opens a connection; the connection's I/O runs on its own task until the client is dropped.
pub async fn connect(url: &JdbcUrl) -> Result<Client> {
    let (client, connection) = url.config().connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "PostgreSQL connection closed with an error");
        }
    });
    Ok(client)
}

/// The bytes `statement` (a `COPY … TO STDOUT`) sends, in chunks as they arrive.
pub async fn copy_out(
    client: &Client,
    statement: &str,
) -> Result<impl Stream<Item = Result<Bytes>> + use<>> {
    let stream = client.copy_out(statement).await?;
    Ok(stream.map(|chunk| chunk.map_err(SluiceError::from)))
}

/// `name` as a PostgreSQL identifier: quoted, with `schema.table` quoted part by part; a name
/// the user already quoted is kept as written.
pub fn quote_identifier(name: &str) -> String {
    if name.starts_with('"') {
        return name.to_string();
    }
    name.split('.')
        .map(|part| format!("\"{}\"", part.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(".")
}

/// `text` as a PostgreSQL string literal.
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}
