//! The producer behind query output: each record names the batch it belongs to, and delivery
//! reports count that batch down, so a scan learns when a whole batch is in Kafka without a
//! future, a channel or an allocation per record.

use std::{
    collections::{BTreeMap, HashMap},
    ffi::{CStr, CString, c_void},
    ptr::{self, NonNull},
    time::Instant,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use parking_lot::{Condvar, Mutex};
use rdkafka::{
    ClientConfig, ClientContext,
    bindings as rdsys,
    error::{KafkaError, RDKafkaErrorCode},
    Message,
    producer::{DeliveryResult, Producer, ProducerContext},
};

use crate::format::{HeaderIter, RecordHeaders};

use super::{
    producer::{QUEUE_RETRY, ReportedProducer},
    traffic::Traffic,
};

/// librdkafka's `RD_KAFKA_PARTITION_UA`: the partitioner picks the partition.
const PARTITION_UNASSIGNED: i32 = -1;

/// The records of one batch still waiting for their delivery report, the first failure, and
/// where the delivered ones landed.
#[derive(Default)]
pub struct BatchDeliveries {
    pending: AtomicUsize,
    failure: Mutex<Option<KafkaError>>,
    settled: Condvar,
    /// By topic and partition, the offset past the last record of the batch delivered there.
    written: Mutex<HashMap<String, BTreeMap<i32, i64>>>,
}

impl BatchDeliveries {
    fn delivered(&self, topic: &str, partition: i32, offset: i64) {
        {
            let mut written = self.written.lock();
            if !written.contains_key(topic) {
                written.insert(topic.to_string(), BTreeMap::new());
            }
            if let Some(partitions) = written.get_mut(topic) {
                let end = partitions.entry(partition).or_insert(0);
                *end = (*end).max(offset + 1);
            }
        }
        self.count_down();
    }

    fn failed(&self, error: KafkaError) {
        self.failure.lock().get_or_insert(error);
        self.count_down();
    }

    fn count_down(&self) {
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            let _failure = self.failure.lock();
            self.settled.notify_all();
        }
    }

    /// Where the batch's records landed: by topic and partition, the offset past its last one.
    pub fn written(&self) -> HashMap<String, BTreeMap<i32, i64>> {
        self.written.lock().clone()
    }

    /// Whether every record sent so far has its delivery report.
    pub fn is_settled(&self) -> bool {
        self.pending.load(Ordering::Acquire) == 0
    }

    /// Waits until `deadline` for the delivery report of every record sent so far: whether they
    /// all came, or the first failure.
    pub fn wait_until(&self, deadline: Instant) -> Result<bool, KafkaError> {
        let mut failure = self.failure.lock();
        while self.pending.load(Ordering::Acquire) != 0 {
            if self.settled.wait_until(&mut failure, deadline).timed_out() {
                return Ok(false);
            }
        }
        failure.take().map_or(Ok(true), Err)
    }
}

/// Routes each delivery report to the batch its record was sent with, counting it per topic.
pub struct DeliveryContext {
    traffic: Arc<Traffic>,
}

impl ClientContext for DeliveryContext {}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = Arc<BatchDeliveries>;

    fn delivery(&self, result: &DeliveryResult<'_>, batch: Arc<BatchDeliveries>) {
        match result {
            Ok(message) => {
                self.traffic.produced(message.topic(), 1);
                batch.delivered(message.topic(), message.partition(), message.offset())
            }
            Err((e, _)) => batch.failed(e.clone()),
        }
    }
}

/// A producer whose deliveries are counted per batch.
pub struct BatchProducer {
    producer: ReportedProducer<DeliveryContext>,
}

impl BatchProducer {
    /// A producer whose deliveries are counted in `traffic`.
    pub fn new(config: &ClientConfig, traffic: Arc<Traffic>) -> Result<Self, KafkaError> {
        Ok(Self {
            producer: ReportedProducer::new(config, DeliveryContext { traffic })?,
        })
    }

    /// The output topic `name`, to send records to.
    pub fn topic(self: &Arc<Self>, name: &str) -> Result<OutputTopic, KafkaError> {
        let c_name = CString::new(name).map_err(|_| KafkaError::ClientCreation(format!("topic name {name:?} holds a NUL")))?;
        // SAFETY: a valid client and NUL-terminated name; the handle is released in `drop`.
        let handle = unsafe { rdsys::rd_kafka_topic_new(self.producer.client().native_ptr(), c_name.as_ptr(), ptr::null_mut()) };
        let handle = NonNull::new(handle).ok_or_else(|| KafkaError::ClientCreation(format!("no handle for topic {name}")))?;
        Ok(OutputTopic {
            handle,
            producer: Arc::clone(self),
        })
    }
}

/// One record for an [`OutputTopic`]; `partition` `None` leaves the choice to the partitioner.
pub struct OutputRecord<'a> {
    pub partition: Option<i32>,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub timestamp: i64,
    /// The value of the record's [`ORIGIN_HEADER`], when it carries one.
    pub origin: Option<&'a [u8]>,
    /// Headers carried over from the record this one came from (its origin header left out).
    pub headers: Option<&'a dyn RecordHeaders>,
}

/// The header naming the query and the source record an output record came from.
pub const ORIGIN_HEADER: &CStr = c"sluice.origin";

/// A topic queries write to, named by its librdkafka handle: sending a record neither copies
/// the topic's name nor looks the topic up.
pub struct OutputTopic {
    handle: NonNull<rdsys::rd_kafka_topic_t>,
    producer: Arc<BatchProducer>,
}

// SAFETY: librdkafka topic handles may be used from any thread; released once, on drop.
unsafe impl Send for OutputTopic {}
unsafe impl Sync for OutputTopic {}

impl OutputTopic {
    /// Queues a copy of `record` as part of `batch`, waiting while the producer's queue is full
    /// rather than dropping it.
    pub fn send(&self, batch: &Arc<BatchDeliveries>, record: &OutputRecord<'_>) -> Result<(), KafkaError> {
        batch.pending.fetch_add(1, Ordering::AcqRel);
        let opaque = Arc::into_raw(Arc::clone(batch)).cast_mut().cast::<c_void>();
        let bytes = |data: Option<&[u8]>| rdsys::rd_kafka_vu_s__bindgen_ty_1 {
            mem: rdsys::rd_kafka_vu_s__bindgen_ty_1__bindgen_ty_1 {
                ptr: data.map_or(ptr::null_mut(), |d| d.as_ptr().cast_mut().cast()),
                size: data.map_or(0, <[u8]>::len),
            },
        };
        let fields = [
            (rdsys::rd_kafka_vtype_t::RD_KAFKA_VTYPE_RKT, rdsys::rd_kafka_vu_s__bindgen_ty_1 { rkt: self.handle.as_ptr() }),
            (rdsys::rd_kafka_vtype_t::RD_KAFKA_VTYPE_PARTITION, rdsys::rd_kafka_vu_s__bindgen_ty_1 { i32_: record.partition.unwrap_or(PARTITION_UNASSIGNED) }),
            (rdsys::rd_kafka_vtype_t::RD_KAFKA_VTYPE_MSGFLAGS, rdsys::rd_kafka_vu_s__bindgen_ty_1 { i: rdsys::RD_KAFKA_MSG_F_COPY }),
            (rdsys::rd_kafka_vtype_t::RD_KAFKA_VTYPE_VALUE, bytes(record.value)),
            (rdsys::rd_kafka_vtype_t::RD_KAFKA_VTYPE_KEY, bytes(record.key)),
            (rdsys::rd_kafka_vtype_t::RD_KAFKA_VTYPE_OPAQUE, rdsys::rd_kafka_vu_s__bindgen_ty_1 { ptr: opaque }),
            (rdsys::rd_kafka_vtype_t::RD_KAFKA_VTYPE_TIMESTAMP, rdsys::rd_kafka_vu_s__bindgen_ty_1 { i64_: record.timestamp }),
            (
                rdsys::rd_kafka_vtype_t::RD_KAFKA_VTYPE_HEADER,
                rdsys::rd_kafka_vu_s__bindgen_ty_1 {
                    header: rdsys::rd_kafka_vu_s__bindgen_ty_1__bindgen_ty_2 {
                        name: ORIGIN_HEADER.as_ptr(),
                        val: record.origin.map_or(ptr::null(), |o| o.as_ptr().cast()),
                        size: record.origin.map_or(0, |o| o.len() as isize),
                    },
                },
            ),
        ]
        .map(|(vtype, u)| rdsys::rd_kafka_vu_t { vtype, u });
        let count = if record.origin.is_some() { fields.len() } else { fields.len() - 1 };
        let carried: Vec<rdsys::rd_kafka_vu_t> = record
            .headers
            .into_iter()
            .flat_map(HeaderIter::of)
            .filter(|(name, _)| *name != ORIGIN_HEADER)
            .map(|(name, value)| rdsys::rd_kafka_vu_t {
                vtype: rdsys::rd_kafka_vtype_t::RD_KAFKA_VTYPE_HEADER,
                u: rdsys::rd_kafka_vu_s__bindgen_ty_1 {
                    header: rdsys::rd_kafka_vu_s__bindgen_ty_1__bindgen_ty_2 {
                        name: name.as_ptr(),
                        val: value.map_or(ptr::null(), |v| v.as_ptr().cast()),
                        size: value.map_or(0, |v| v.len() as isize),
                    },
                },
            })
            .collect();
        // Only a record carrying headers pays for a list of its own fields.
        let all: Vec<rdsys::rd_kafka_vu_t>;
        let (fields, count) = if carried.is_empty() {
            (&fields[..], count)
        } else {
            all = fields[..count].iter().copied().chain(carried).collect();
            (&all[..], all.len())
        };
        let client = self.producer.producer.client().native_ptr();
        loop {
            // SAFETY: every field points at data that outlives the call (librdkafka copies the
            // key and value); on success the opaque is handed back with the delivery report.
            let error = unsafe { rdsys::rd_kafka_produceva(client, fields.as_ptr(), count) };
            if error.is_null() {
                return Ok(());
            }
            // SAFETY: a non-null error is ours to read and release.
            let code = unsafe {
                let code = rdsys::rd_kafka_error_code(error);
                rdsys::rd_kafka_error_destroy(error);
                RDKafkaErrorCode::from(code)
            };
            if code == RDKafkaErrorCode::QueueFull {
                std::thread::sleep(QUEUE_RETRY);
                continue;
            }
            // SAFETY: the record was not queued, so the reference given as its opaque is still ours.
            drop(unsafe { Arc::from_raw(opaque.cast::<BatchDeliveries>()) });
            let error = KafkaError::MessageProduction(code);
            batch.failed(error.clone());
            return Err(error);
        }
    }
}

impl Drop for OutputTopic {
    fn drop(&mut self) {
        // SAFETY: the handle taken in `BatchProducer::topic`, released once; its producer lives.
        unsafe { rdsys::rd_kafka_topic_destroy(self.handle.as_ptr()) };
    }
}
