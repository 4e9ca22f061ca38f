//! Taking fetched records from a consumer a batch at a time (librdkafka's batch consume): one
//! queue lock and one clock reading per batch, where polling takes them per record.

use std::{
    borrow::Cow,
    cell::RefCell,
    ffi::{CStr, c_char, c_int},
    marker::PhantomData,
    ops::Deref,
    ptr::NonNull,
    time::Duration,
};

use rdkafka::{
    bindings as rdsys,
    consumer::{BaseConsumer, Consumer},
    error::{KafkaError, RDKafkaErrorCode},
};
use tracing::{debug, info, warn};

use crate::format::{RawRecord, RecordHeaders};

/// A consumer whose records are taken in batches. Assignment and metadata are the wrapped
/// consumer's.
///
/// librdkafka's client-level events (log lines, errors such as all brokers being down) are kept
/// off the record queue and served on each fetch: batch consume would otherwise take them along
/// with the records and drop them.
pub struct BatchConsumer {
    queue: NonNull<rdsys::rd_kafka_queue_t>,
    events: NonNull<rdsys::rd_kafka_queue_t>,
    client_error: RefCell<Option<String>>,
    consumer: BaseConsumer,
}

// SAFETY: librdkafka queues may be served from any thread; the handles are only released on drop,
// and `client_error` is only touched through `&self` methods of the one thread that owns this.
unsafe impl Send for BatchConsumer {}

impl BatchConsumer {
    pub fn new(consumer: BaseConsumer) -> Result<Self, KafkaError> {
        let client = consumer.client().native_ptr();
        // SAFETY: the client pointer is valid while `consumer` lives; both queue references taken
        // here are released in `drop`, before the consumer is.
        let (queue, events) = unsafe { (rdsys::rd_kafka_queue_get_consumer(client), rdsys::rd_kafka_queue_get_main(client)) };
        let (Some(queue), Some(events)) = (NonNull::new(queue), NonNull::new(events)) else {
            return Err(KafkaError::ClientCreation("the consumer has no queue".into()));
        };
        // SAFETY: both handles are valid; this undoes the consumer's forwarding of its main queue.
        unsafe { rdsys::rd_kafka_queue_forward(events.as_ptr(), std::ptr::null_mut()) };
        Ok(Self {
            queue,
            events,
            client_error: RefCell::new(None),
            consumer,
        })
    }

    /// Up to `max` records: those already fetched, else whatever arrives first within
    /// `first_wait`; then at most `fill_wait` more for the rest of the batch. A consumer error
    /// among them fails the whole batch, so no record is taken past one that failed.
    pub fn fetch(&self, max: usize, first_wait: Duration, fill_wait: Duration) -> Result<Fetched<'_>, KafkaError> {
        let mut fetched = Fetched {
            messages: Vec::with_capacity(max),
            consumer: PhantomData,
        };
        self.take(&mut fetched, max, Duration::ZERO);
        if fetched.messages.is_empty() {
            self.take(&mut fetched, 1, first_wait);
        }
        let room = max - fetched.messages.len();
        if !fetched.messages.is_empty() && room > 0 {
            self.take(&mut fetched, room, fill_wait);
        }
        self.serve_client_events();
        match fetched.failure() {
            Some(error) => Err(error),
            None => Ok(fetched),
        }
    }

    /// The last client-level error (all brokers down, say) served by a fetch since the previous
    /// call.
    pub fn take_client_error(&self) -> Option<String> {
        self.client_error.borrow_mut().take()
    }

    /// Appends up to `count` records to `fetched`, waiting at most `wait` for all of them.
    fn take(&self, fetched: &mut Fetched<'_>, count: usize, wait: Duration) {
        fetched.messages.reserve(count);
        let wait_ms = c_int::try_from(wait.as_millis()).unwrap_or(c_int::MAX);
        let spare = fetched.messages.spare_capacity_mut();
        // SAFETY: `spare` has room for `count` message pointers; librdkafka writes `taken` of
        // them, each a message the caller owns until `rd_kafka_message_destroy`.
        let taken = unsafe {
            rdsys::rd_kafka_consume_batch_queue(self.queue.as_ptr(), wait_ms, spare.as_mut_ptr().cast(), count)
        };
        let taken = usize::try_from(taken).unwrap_or(0).min(count);
        // SAFETY: the first `taken` spare slots were just written.
        unsafe { fetched.messages.set_len(fetched.messages.len() + taken) };
    }

    /// Logs librdkafka's pending log lines and keeps the last client-level error.
    fn serve_client_events(&self) {
        loop {
            // SAFETY: a valid queue handle; a returned event is ours until destroyed below.
            let event = unsafe { rdsys::rd_kafka_queue_poll(self.events.as_ptr(), 0) };
            if event.is_null() {
                return;
            }
            // SAFETY: `event` is a live event; the strings it hands out live as long as it does.
            unsafe {
                match rdsys::rd_kafka_event_type(event) {
                    rdsys::RD_KAFKA_EVENT_LOG => {
                        let (mut facility, mut line, mut level) = (std::ptr::null(), std::ptr::null(), 0);
                        if rdsys::rd_kafka_event_log(event, &mut facility, &mut line, &mut level) == 0 {
                            let (facility, line) = (text(facility), text(line));
                            match level {
                                ..=3 => warn!(target: "librdkafka", %facility, "{line}"),
                                4..=5 => info!(target: "librdkafka", %facility, "{line}"),
                                _ => debug!(target: "librdkafka", %facility, "{line}"),
                            }
                        }
                    }
                    rdsys::RD_KAFKA_EVENT_ERROR => {
                        let error = text(rdsys::rd_kafka_event_error_string(event));
                        warn!(%error, "Kafka client error");
                        *self.client_error.borrow_mut() = Some(error.into_owned());
                    }
                    _ => {}
                }
                rdsys::rd_kafka_event_destroy(event);
            }
        }
    }
}

impl Deref for BatchConsumer {
    type Target = BaseConsumer;

    fn deref(&self) -> &BaseConsumer {
        &self.consumer
    }
}

impl Drop for BatchConsumer {
    fn drop(&mut self) {
        // SAFETY: the references taken in `new`, each released once; the consumer is still alive.
        // Forwarding the main queue back hands what waits on it, and whatever reaches it later,
        // to the consumer's close, which serves its queue until librdkafka lets go of every
        // partition: an op left unserved on the main queue can hold a partition, and with it a
        // broker thread, forever (a graceful shutdown hung about one time in six without this).
        unsafe {
            rdsys::rd_kafka_queue_forward(self.events.as_ptr(), self.queue.as_ptr());
            rdsys::rd_kafka_queue_destroy(self.queue.as_ptr());
            rdsys::rd_kafka_queue_destroy(self.events.as_ptr());
        }
    }
}

/// A fetched message's headers, read through librdkafka, which parses them when first asked.
#[repr(transparent)]
pub struct MessageHeaders(rdsys::rd_kafka_message_t);

impl MessageHeaders {
    fn of(message: &rdsys::rd_kafka_message_t) -> &MessageHeaders {
        // SAFETY: `MessageHeaders` is a transparent wrapper of the message.
        unsafe { &*(message as *const rdsys::rd_kafka_message_t).cast::<MessageHeaders>() }
    }
}

impl std::fmt::Debug for MessageHeaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(crate::format::HeaderIter::of(self)).finish()
    }
}

// SAFETY: a batch's messages are read by the one thread that fetched them; librdkafka parses a
// message's headers once, on that thread, and only reads them afterwards.
unsafe impl Sync for MessageHeaders {}

impl RecordHeaders for MessageHeaders {
    fn header(&self, index: usize) -> Option<(&CStr, Option<&[u8]>)> {
        let mut headers: *mut rdsys::rd_kafka_headers_t = std::ptr::null_mut();
        // SAFETY: the message is live while `self` is borrowed; librdkafka keeps the parsed
        // headers with the message.
        let found = unsafe { rdsys::rd_kafka_message_headers(&self.0, &mut headers) };
        if found != rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR || headers.is_null() {
            return None;
        }
        let mut name: *const std::ffi::c_char = std::ptr::null();
        let mut value: *const std::ffi::c_void = std::ptr::null();
        let mut size: usize = 0;
        // SAFETY: `headers` belongs to the message; the name and value it hands out live as long.
        let error = unsafe { rdsys::rd_kafka_header_get_all(headers, index, &mut name, &mut value, &mut size) };
        if error != rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR || name.is_null() {
            return None;
        }
        // SAFETY: as above; a header's name is NUL-terminated and its value `size` bytes.
        unsafe { Some((CStr::from_ptr(name), (!value.is_null()).then(|| std::slice::from_raw_parts(value.cast::<u8>(), size)))) }
    }
}

/// Records taken from a [`BatchConsumer`]; they are released when this is dropped.
pub struct Fetched<'c> {
    messages: Vec<*mut rdsys::rd_kafka_message_t>,
    consumer: PhantomData<&'c ()>,
}

impl Fetched<'_> {
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// Each record's topic name, without reading the record.
    pub fn topics(&self) -> impl Iterator<Item = &[u8]> {
        // SAFETY: each pointer is a live message owned by `self` until drop, and its topic
        // handle and name live as long as the message.
        self.messages.iter().map(|message| unsafe { CStr::from_ptr(rdsys::rd_kafka_topic_name((**message).rkt)) }.to_bytes())
    }

    /// The records, borrowing their keys and values, each with the name of its topic.
    pub fn records(&self) -> impl Iterator<Item = (&[u8], RawRecord<'_>)> {
        self.messages.iter().map(|message| {
            // SAFETY: each pointer is a live message owned by `self` until drop.
            let message = unsafe { &**message };
            let mut kind = rdsys::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
            // SAFETY: as above; `kind` is a valid place for the timestamp type.
            let timestamp = unsafe { rdsys::rd_kafka_message_timestamp(message, &mut kind) };
            let available = kind != rdsys::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
            // SAFETY: a message's topic handle and its name live as long as the message.
            let topic = unsafe { CStr::from_ptr(rdsys::rd_kafka_topic_name(message.rkt)) }.to_bytes();
            let record = RawRecord {
                partition: message.partition,
                offset: message.offset,
                timestamp: if available { timestamp } else { 0 },
                // SAFETY: librdkafka's key and payload are `len` bytes, valid while the message is.
                key: unsafe { bytes(message.key, message.key_len) },
                value: unsafe { bytes(message.payload, message.len) },
                headers: Some(MessageHeaders::of(message)),
            };
            (topic, record)
        })
    }

    /// The first consumer error among the taken records, if any.
    fn failure(&self) -> Option<KafkaError> {
        self.messages.iter().find_map(|message| {
            // SAFETY: a live message owned by `self`.
            let error = unsafe { (**message).err };
            (error != rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR)
                .then(|| KafkaError::MessageConsumption(RDKafkaErrorCode::from(error)))
        })
    }
}

impl Drop for Fetched<'_> {
    fn drop(&mut self) {
        for message in self.messages.drain(..) {
            // SAFETY: each message was handed to us by librdkafka and is released exactly once.
            unsafe { rdsys::rd_kafka_message_destroy(message) };
        }
    }
}

/// # Safety
/// `data` must be null or point to `len` bytes that outlive `'a`.
unsafe fn bytes<'a>(data: *mut std::ffi::c_void, len: usize) -> Option<&'a [u8]> {
    (!data.is_null()).then(|| unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) })
}

/// # Safety
/// `text` must be null or a NUL-terminated string that outlives `'a`.
unsafe fn text<'a>(text: *const c_char) -> Cow<'a, str> {
    if text.is_null() {
        Cow::Borrowed("")
    } else {
        unsafe { CStr::from_ptr(text) }.to_string_lossy()
    }
}
