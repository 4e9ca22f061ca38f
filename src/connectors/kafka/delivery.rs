//! The producer behind query output: each record names the batch it belongs to, and delivery
//! reports count that batch down, so a scan learns when a whole batch is in Kafka without a
//! future, a channel or an allocation per record. The scans poll it themselves (no polling
//! thread): after each batch they send, and while they wait for an old batch to settle.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use parking_lot::Mutex;
use rdkafka::{
    ClientConfig, ClientContext,
    error::{KafkaError, RDKafkaErrorCode},
    producer::{BaseProducer, BaseRecord, DeliveryResult, ProducerContext},
};

/// The pause between two looks at the delivery reports while waiting for a batch. (librdkafka's
/// queue poll with a timeout returns early again and again under load, so waiting inside it
/// spins; a short sleep does not.)
const DELIVERY_PAUSE: Duration = Duration::from_millis(1);

/// The records of one batch still waiting for their delivery report, and the first failure.
#[derive(Default)]
pub struct BatchDeliveries {
    pending: AtomicUsize,
    failure: Mutex<Option<KafkaError>>,
}

impl BatchDeliveries {
    fn settle(&self, result: Result<(), KafkaError>) {
        if let Err(e) = result {
            self.failure.lock().get_or_insert(e);
        }
        self.pending.fetch_sub(1, Ordering::AcqRel);
    }

    /// Whether every record sent so far has its delivery report.
    pub fn is_settled(&self) -> bool {
        self.pending.load(Ordering::Acquire) == 0
    }

    /// The first failure among the settled records.
    fn outcome(&self) -> Result<(), KafkaError> {
        self.failure.lock().take().map_or(Ok(()), Err)
    }
}

/// Routes each delivery report to the batch its record was sent with.
pub struct DeliveryContext;

impl ClientContext for DeliveryContext {}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = Arc<BatchDeliveries>;

    fn delivery(&self, result: &DeliveryResult<'_>, batch: Arc<BatchDeliveries>) {
        batch.settle(result.as_ref().map(|_| ()).map_err(|(e, _)| e.clone()));
    }
}

/// A producer whose deliveries are counted per batch.
pub struct BatchProducer {
    producer: BaseProducer<DeliveryContext>,
}

impl BatchProducer {
    pub fn new(config: &ClientConfig) -> Result<Self, KafkaError> {
        Ok(Self {
            producer: config.create_with_context(DeliveryContext)?,
        })
    }

    /// Queues a record as part of `batch`, waiting while the producer's queue is full rather
    /// than dropping it.
    pub fn send(
        &self,
        batch: &Arc<BatchDeliveries>,
        record: BaseRecord<'_, [u8], [u8], Arc<BatchDeliveries>>,
    ) -> Result<(), KafkaError> {
        batch.pending.fetch_add(1, Ordering::AcqRel);
        let mut record = record;
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    record = returned;
                    self.producer.poll(Duration::ZERO);
                    std::thread::sleep(DELIVERY_PAUSE);
                }
                Err((e, _)) => {
                    batch.settle(Err(e.clone()));
                    return Err(e);
                }
            }
        }
    }

    /// Serves the delivery reports that have arrived, without waiting.
    pub fn poll(&self) {
        self.producer.poll(Duration::ZERO);
    }

    /// Serves delivery reports until every record of `batch` has one; the first failure, if any.
    pub fn wait(&self, batch: &BatchDeliveries) -> Result<(), KafkaError> {
        loop {
            self.producer.poll(Duration::ZERO);
            if batch.is_settled() {
                return batch.outcome();
            }
            std::thread::sleep(DELIVERY_PAUSE);
        }
    }
}

/// A record of `batch` for `topic`, to fill in and pass to [`BatchProducer::send`].
pub fn record<'a>(topic: &'a str, batch: &Arc<BatchDeliveries>) -> BaseRecord<'a, [u8], [u8], Arc<BatchDeliveries>> {
    BaseRecord::with_opaque_to(topic, Arc::clone(batch))
}
