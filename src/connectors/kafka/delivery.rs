//! The producer behind query output: each record names the batch it belongs to, and delivery
//! reports count that batch down, so a scan learns when a whole batch is in Kafka without a
//! future, a channel or an allocation per record.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use parking_lot::{Condvar, Mutex};
use rdkafka::{
    ClientConfig, ClientContext,
    error::{KafkaError, RDKafkaErrorCode},
    producer::{BaseRecord, DeliveryResult, ProducerContext},
};

use super::producer::{QUEUE_RETRY, ReportedProducer};

/// The records of one batch still waiting for their delivery report, and the first failure.
#[derive(Default)]
pub struct BatchDeliveries {
    pending: AtomicUsize,
    failure: Mutex<Option<KafkaError>>,
    settled: Condvar,
}

impl BatchDeliveries {
    fn settle(&self, result: Result<(), KafkaError>) {
        if let Err(e) = result {
            self.failure.lock().get_or_insert(e);
        }
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            let _failure = self.failure.lock();
            self.settled.notify_all();
        }
    }

    /// Whether every record sent so far has its delivery report.
    pub fn is_settled(&self) -> bool {
        self.pending.load(Ordering::Acquire) == 0
    }

    /// Waits for the delivery report of every record sent so far; the first failure, if any.
    pub fn wait(&self) -> Result<(), KafkaError> {
        let mut failure = self.failure.lock();
        while self.pending.load(Ordering::Acquire) != 0 {
            self.settled.wait(&mut failure);
        }
        failure.take().map_or(Ok(()), Err)
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
    producer: ReportedProducer<DeliveryContext>,
}

impl BatchProducer {
    pub fn new(config: &ClientConfig) -> Result<Self, KafkaError> {
        Ok(Self {
            producer: ReportedProducer::new(config, DeliveryContext)?,
        })
    }

    /// Queues a record as part of `batch`, waiting while the producer's queue is full rather
    /// than dropping it.
    pub fn send(
        &self,
        batch: &Arc<BatchDeliveries>,
        mut record: BaseRecord<'_, [u8], [u8], Arc<BatchDeliveries>>,
    ) -> Result<(), KafkaError> {
        batch.pending.fetch_add(1, Ordering::AcqRel);
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    record = returned;
                    std::thread::sleep(QUEUE_RETRY);
                }
                Err((e, _)) => {
                    batch.settle(Err(e.clone()));
                    return Err(e);
                }
            }
        }
    }
}

/// A record of `batch` for `topic`, to fill in and pass to [`BatchProducer::send`].
pub fn record<'a>(topic: &'a str, batch: &Arc<BatchDeliveries>) -> BaseRecord<'a, [u8], [u8], Arc<BatchDeliveries>> {
    BaseRecord::with_opaque_to(topic, Arc::clone(batch))
}
