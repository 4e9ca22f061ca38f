//! `/metrics`: the server's figures in Prometheus' exposition format (OpenMetrics text, which
//! Prometheus scrapes): per persistent query its records in and out, processing errors, state,
//! processing latency and lag per topic-partition; per connector its failures, skipped records
//! and state, and per topic-partition the records, files and bytes written and the lag;
//! HTTP requests by method, route and status; the process's CPU time and memory. The query and
//! connector figures are read from their live status at each scrape.

use std::{fmt, sync::Arc};

use axum::{
    extract::{MatchedPath, Request, State},
    http::header,
    middleware::Next,
    response::{IntoResponse, Response},
};
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet, text::encode},
    metrics::{
        MetricType,
        counter::{ConstCounter, Counter},
        family::Family,
        gauge::ConstGauge,
    },
    registry::Registry,
};

use super::{AppError, AppState};
use crate::{connectors::status::PartitionProgress, error::SluiceError, handler::Engine};

const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Linux's clock tick, the unit of `/proc/self/stat` CPU times.
const TICKS_PER_SECOND: f64 = 100.0;

/// The registry `/metrics` encodes, and the request counts the API keeps in it.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

impl Metrics {
    pub fn new(engine: Arc<Engine>) -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("sluice_http_requests", "HTTP requests served, by method, route and status", requests.clone());
        registry.register_collector(Box::new(EngineCollector { engine }));
        registry.register_collector(Box::new(ProcessCollector));
        Self { registry, requests }
    }
}

/// Counts each request by its route (the pattern, not the path, so a connector's name is not a
/// label value) and status.
pub async fn count_requests(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = request.method().to_string();
    let response = next.run(request).await;
    let labels = RequestLabels { method, route, status: response.status().as_u16() };
    state.metrics.requests.get_or_create(&labels).inc();
    response
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<AppState>) -> Result<Response, AppError> {
    let mut body = String::new();
    encode(&mut body, &state.metrics.registry)
        .map_err(|e| AppError::from(SluiceError::Internal(format!("the metrics could not be written: {e}"))))?;
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response())
}

/// Reads the queries' and connectors' live status at each scrape.
struct EngineCollector {
    engine: Arc<Engine>,
}

impl fmt::Debug for EngineCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EngineCollector")
    }
}

/// Writes one metric family: `name`, of `kind`, a sample per `(labels, value)`.
fn family<L: EncodeLabelSet, M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    samples: impl IntoIterator<Item = (L, M)>,
) -> fmt::Result {
    let mut metric = encoder.encode_descriptor(name, help, None, kind)?;
    for (labels, value) in samples {
        value.encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

impl Collector for EngineCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let queries = self.engine.queries.statuses();
        let counts: Vec<(String, (u64, u64, u64))> = queries.iter().map(|(id, s)| (id.clone(), s.counts())).collect();
        let by_query = |pick: fn(&(u64, u64, u64)) -> u64| {
            counts.iter().map(move |(id, c)| (vec![("query", id.clone())], ConstCounter::new(pick(c))))
        };
        family(&mut encoder, "sluice_query_records_in", "Records a persistent query read", MetricType::Counter, by_query(|c| c.0))?;
        family(&mut encoder, "sluice_query_records_out", "Records a persistent query wrote", MetricType::Counter, by_query(|c| c.1))?;
        family(
            &mut encoder,
            "sluice_query_processing_errors",
            "Records a persistent query skipped (bad input, failed expressions), each in its processing log",
            MetricType::Counter,
            by_query(|c| c.2),
        )?;
        family(
            &mut encoder,
            "sluice_query_state",
            "1 for a persistent query's current state (RUNNING, ERROR, …)",
            MetricType::Gauge,
            queries.iter().map(|(id, s)| (vec![("query", id.clone()), ("state", s.state().name().to_string())], ConstGauge::new(1i64))),
        )?;
        family(
            &mut encoder,
            "sluice_query_processing_latency_seconds",
            "Seconds from a batch's fetch to a persistent query's output for it being in Kafka",
            MetricType::Histogram,
            queries.iter().map(|(id, s)| {
                let (sum, buckets) = s.latency.buckets();
                (vec![("query", id.clone())], LatencyHistogram { sum, buckets })
            }),
        )?;
        family(
            &mut encoder,
            "sluice_query_lag_records",
            "Records in a topic-partition a persistent query has yet to read",
            MetricType::Gauge,
            self.engine.queries.lags().into_iter().map(|lag| {
                let labels = vec![("query", lag.query), ("topic", lag.topic), ("partition", lag.partition.to_string())];
                (labels, ConstGauge::new(lag.records))
            }),
        )?;
        let partitions: Vec<(String, String, i32, PartitionProgress)> = self
            .engine
            .connectors
            .statuses()
            .into_iter()
            .flat_map(|(name, status)| {
                status.partitions().into_iter().map(move |((topic, partition), progress)| (name.clone(), topic, partition, progress))
            })
            .collect();
        let labels = |name: &str, topic: &str, partition: i32| {
            vec![("connector", name.to_string()), ("topic", topic.to_string()), ("partition", partition.to_string())]
        };
        let per_partition = |pick: fn(&PartitionProgress) -> u64| {
            partitions.iter().map(move |(name, topic, partition, p)| (labels(name, topic, *partition), ConstCounter::new(pick(p))))
        };
        family(&mut encoder, "sluice_connector_records", "Records a sink connector wrote to committed files", MetricType::Counter, per_partition(|p| p.records))?;
        family(&mut encoder, "sluice_connector_files", "Files a sink connector committed", MetricType::Counter, per_partition(|p| p.files))?;
        family(&mut encoder, "sluice_connector_bytes", "Bytes a sink connector wrote to committed files", MetricType::Counter, per_partition(|p| p.bytes))?;
        let traffic = self.engine.cluster.traffic().snapshot();
        family(
            &mut encoder,
            "sluice_topic_records_produced",
            "Records this server's queries wrote to a topic, as Kafka acknowledged them",
            MetricType::Counter,
            traffic.iter().map(|(topic, t)| (vec![("topic", topic.clone())], ConstCounter::new(t.produced))),
        )?;
        family(
            &mut encoder,
            "sluice_topic_records_fetched",
            "Records this server's queries fetched from a topic",
            MetricType::Counter,
            traffic.iter().map(|(topic, t)| (vec![("topic", topic.clone())], ConstCounter::new(t.fetched))),
        )?;
        let connectors = self.engine.connectors.statuses();
        family(
            &mut encoder,
            "sluice_connector_failures",
            "Times a connector's task failed (each retried with backoff)",
            MetricType::Counter,
            connectors.iter().map(|(name, s)| (vec![("connector", name.clone())], ConstCounter::new(s.failures()))),
        )?;
        family(
            &mut encoder,
            "sluice_connector_skipped_records",
            "Records a connector left out because their value could not be read",
            MetricType::Counter,
            connectors.iter().map(|(name, s)| (vec![("connector", name.clone())], ConstCounter::new(s.skipped().0))),
        )?;
        family(
            &mut encoder,
            "sluice_connector_state",
            "1 for a connector's current state (RUNNING, FAILED, …)",
            MetricType::Gauge,
            connectors.iter().map(|(name, s)| (vec![("connector", name.clone()), ("state", s.state().name().to_string())], ConstGauge::new(1i64))),
        )?;
        family(
            &mut encoder,
            "sluice_connector_lag_records",
            "Records in the topic-partition not yet in a committed file",
            MetricType::Gauge,
            partitions.iter().map(|(name, topic, partition, p)| (labels(name, topic, *partition), ConstGauge::new(p.lag()))),
        )
    }
}

/// A query's latency histogram as read at the scrape.
struct LatencyHistogram {
    sum: f64,
    /// Each bucket's upper bound and count, not cumulated.
    buckets: Vec<(f64, u64)>,
}

impl EncodeMetric for LatencyHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> fmt::Result {
        let count = self.buckets.iter().map(|(_, n)| n).sum();
        encoder.encode_histogram::<NoLabelSet>(self.sum, count, &self.buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// The process's CPU time and resident memory, from `/proc/self`.
#[derive(Debug)]
struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
        let cpu = (ticks(11) + ticks(12)) / TICKS_PER_SECOND;
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let resident_kb = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
            .unwrap_or(0);
        let counter = ConstCounter::new(cpu);
        counter.encode(encoder.encode_descriptor("process_cpu_seconds", "User and system CPU time the process spent", None, counter.metric_type())?)?;
        let gauge = ConstGauge::new(resident_kb * 1024);
        gauge.encode(encoder.encode_descriptor("process_resident_memory_bytes", "The process's resident memory", None, gauge.metric_type())?)
    }
}
