//! A fault tests inject from outside: with `SLUICE_INJECT_PANIC=<text>` in its environment,
//! the server panics, once per process, at the first of these points to meet a record whose
//! value contains `<text>`: a query batch holding it, or a change-capture batch holding it once
//! written to Kafka and before the database is told so. Tests use it to prove that a task that
//! panics shows ERROR and is restarted, and that work redone after it is not repeated.

use std::sync::{
    OnceLock,
    atomic::{AtomicBool, Ordering},
};

use crate::format::RawRecord;

static MARKER: OnceLock<Option<Vec<u8>>> = OnceLock::new();
static FIRED: AtomicBool = AtomicBool::new(false);

/// Whether the injected fault is armed and `value` carries its marker.
pub fn marks(value: &[u8]) -> bool {
    let marker = MARKER.get_or_init(|| std::env::var("SLUICE_INJECT_PANIC").ok().map(String::into_bytes));
    marker.as_ref().is_some_and(|marker| value.windows(marker.len()).any(|w| w == marker.as_slice()))
}

/// Panics, the first time in this process.
pub fn fire() {
    if !FIRED.swap(true, Ordering::SeqCst) {
        let marker = MARKER.get().cloned().flatten().unwrap_or_default();
        panic!("injected fault: a record holds {:?}", String::from_utf8_lossy(&marker));
    }
}

/// Panics if the injected fault is armed and one of `records` carries its marker.
pub fn panic_if_injected(records: &[RawRecord<'_>]) {
    if records.iter().filter_map(|r| r.value).any(marks) {
        fire();
    }
}
