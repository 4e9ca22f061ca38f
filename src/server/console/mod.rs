//! The web console: one page, its script and its style embedded in the binary and served at
//! `/`, and the JSON it reads beyond ksqlDB's and Kafka Connect's APIs, under `/console/api`.

mod files;
mod flow;
mod queries;
mod records;

use axum::{
    Router,
    http::header,
    response::IntoResponse,
    routing::get,
};

use super::AppState;

const PAGE: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/console.js");
const STYLE: &str = include_str!("assets/console.css");

/// The console's page, assets and API.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { asset("text/html; charset=utf-8", PAGE) }))
        .route("/console/console.js", get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }))
        .route("/console/console.css", get(|| async { asset("text/css; charset=utf-8", STYLE) }))
        .route("/console/api/flow", get(queries::flow))
        .route("/console/api/queries", get(queries::list))
        .route("/console/api/topics", get(records::list))
        .route("/console/api/topics/{name}", get(records::describe))
        .route("/console/api/topics/{name}/records", get(records::browse).post(records::produce))
        .route("/console/api/connectors/{name}/files", get(files::tree))
        .route("/console/api/connectors/{name}/preview", get(files::preview))
}

/// An embedded asset; browsers ask again after each start, as a new version may serve other
/// assets.
fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body)
}
