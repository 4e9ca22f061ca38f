//! A fault tests inject from outside: with `SLUICE_INJECT_PANIC=<text>` in its environment,
//! the server's first query batch holding a record whose value contains `<text>` panics, once
//! per process. Tests use it to prove that a task that panics shows ERROR and is restarted.

use std::sync::{
    OnceLock,
    atomic::{AtomicBool, Ordering},
};

use crate::format::RawRecord;

static MARKER: OnceLock<Option<Vec<u8>>> = OnceLock::new();
static FIRED: AtomicBool = AtomicBool::new(false);

/// Panics if the injected fault is armed and one of `records` carries its marker.
pub fn panic_if_injected(records: &[RawRecord<'_>]) {
    let marker = MARKER.get_or_init(|| std::env::var("SLUICE_INJECT_PANIC").ok().map(String::into_bytes));
    let Some(marker) = marker else { return };
    let hit = records
        .iter()
        .filter_map(|r| r.value)
        .any(|value| value.windows(marker.len()).any(|w| w == marker.as_slice()));
    if hit && !FIRED.swap(true, Ordering::SeqCst) {
        panic!("injected fault: a record holds {:?}", String::from_utf8_lossy(marker));
    }
}
