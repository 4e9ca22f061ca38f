//! Producers whose delivery reports a thread of their own serves, and the producer for
//! single records that a statement awaits (command log, offsets, `INSERT`).
//!
//! rdkafka's `ThreadedProducer` (and the `FutureProducer` built on it) polls in 100 ms calls, and
//! each call spins through its last millisecond, where the wait left rounds down to zero: about
//! 1 % of a core per producer, busy or idle. Polling in one-second calls cuts that tenfold.

use std::{
    ops::Deref,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use rdkafka::{
    ClientConfig, ClientContext, Message,
    error::{KafkaError, RDKafkaErrorCode},
    producer::{BaseProducer, BaseRecord, DeliveryResult, ProducerContext},
};
use tokio::sync::oneshot;

/// How long one poll for delivery reports may wait; reports are served as soon as they arrive.
const REPORT_WAIT: Duration = Duration::from_secs(1);
/// How long a single record waits for room in a full producer queue before failing.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a sender waits before offering a record to a full producer queue again.
pub(super) const QUEUE_RETRY: Duration = Duration::from_millis(5);

/// A producer whose delivery reports (handed to its context) a thread of its own serves. The
/// thread ends within [`REPORT_WAIT`] of the producer being dropped.
pub struct ReportedProducer<C: ProducerContext + 'static> {
    producer: Arc<BaseProducer<C>>,
    running: Arc<AtomicBool>,
}

impl<C: ProducerContext + 'static> ReportedProducer<C> {
    pub fn new(config: &ClientConfig, context: C) -> Result<Self, KafkaError> {
        let producer: Arc<BaseProducer<C>> = Arc::new(config.create_with_context(context)?);
        let running = Arc::new(AtomicBool::new(true));
        let (polled, polling) = (producer.clone(), running.clone());
        std::thread::Builder::new()
            .name("producer-reports".into())
            .spawn(move || {
                while polling.load(Ordering::Relaxed) {
                    polled.poll(REPORT_WAIT);
                }
            })
            .map_err(|e| KafkaError::ClientCreation(format!("delivery report thread: {e}")))?;
        Ok(Self { producer, running })
    }
}

impl<C: ProducerContext + 'static> Deref for ReportedProducer<C> {
    type Target = BaseProducer<C>;

    fn deref(&self) -> &Self::Target {
        &self.producer
    }
}

impl<C: ProducerContext + 'static> Drop for ReportedProducer<C> {
    fn drop(&mut self) {
        self.running.store(false, Ordering::Relaxed);
    }
}

/// Where a single record landed.
pub type Delivered = (i32, i64);

/// Hands each single record's delivery report to the task awaiting it.
pub struct AwaitedContext;

impl ClientContext for AwaitedContext {}

impl ProducerContext for AwaitedContext {
    type DeliveryOpaque = Box<oneshot::Sender<Result<Delivered, KafkaError>>>;

    fn delivery(&self, result: &DeliveryResult<'_>, waiting: Self::DeliveryOpaque) {
        let outcome = match result {
            Ok(message) => Ok((message.partition(), message.offset())),
            Err((e, _)) => Err(e.clone()),
        };
        let _ = waiting.send(outcome);
    }
}

/// Single records whose delivery the sender awaits.
pub struct RecordProducer {
    producer: ReportedProducer<AwaitedContext>,
}

impl RecordProducer {
    pub fn new(config: &ClientConfig) -> Result<Self, KafkaError> {
        Ok(Self {
            producer: ReportedProducer::new(config, AwaitedContext)?,
        })
    }

    /// Sends one record (to `partition`, or where the partitioner puts it; stamped `timestamp`,
    /// or now) and returns where it landed once Kafka has it.
    pub async fn send(
        &self,
        topic: &str,
        partition: Option<i32>,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
        timestamp: Option<i64>,
    ) -> Result<Delivered, KafkaError> {
        let queued_by = Instant::now() + QUEUE_TIMEOUT;
        let delivered = loop {
            let (sender, delivered) = oneshot::channel();
            let mut record = BaseRecord::with_opaque_to(topic, Box::new(sender));
            if let Some(partition) = partition {
                record = record.partition(partition);
            }
            if let Some(key) = key {
                record = record.key(key);
            }
            if let Some(payload) = payload {
                record = record.payload(payload);
            }
            if let Some(timestamp) = timestamp {
                record = record.timestamp(timestamp);
            }
            match self.producer.send(record) {
                Ok(()) => break delivered,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) if Instant::now() < queued_by => {
                    tokio::time::sleep(QUEUE_RETRY).await;
                }
                Err((e, _)) => return Err(e),
            }
        };
        delivered
            .await
            .map_err(|_| KafkaError::Canceled)?
    }
}
