//! An object's durable record (`signaling_core::record::Record`):
//! loaded into memory once per wake, changed in place by the core, and
//! written to storage (with the alarm it names) as it is when the write is
//! issued.

use signaling_core::record::Record;
use std::cell::RefCell;
use worker::{Result, State, Storage};

/// Storage key of the object's durable record.
const META_KEY: &str = "meta";

/// The object's one copy of the record; `None` until loaded after a wake.
#[derive(Default)]
pub struct CachedRecord {
    meta: RefCell<Option<Record>>,
}

impl CachedRecord {
    /// Loads the record once per wake (the storage handle is only made then).
    pub async fn load(&self, state: &State) -> Result<()> {
        if self.meta.borrow().is_some() {
            return Ok(());
        }
        let stored = crate::stored::get::<Record>(&state.storage(), META_KEY)
            .await?
            .unwrap_or_default();
        // Another event may have loaded (and changed) it while we waited.
        self.meta.borrow_mut().get_or_insert(stored);
        Ok(())
    }

    /// Runs `change` on the in-memory record itself (no copy), without
    /// yielding: an event that gets in during a later await starts from this
    /// change, never from a stale copy.
    pub fn change<R>(&self, change: impl FnOnce(&mut Record) -> R) -> R {
        let mut cache = self.meta.borrow_mut();
        change(cache.get_or_insert_with(Record::default))
    }

    /// Writes the record as it is now, which may already include later
    /// events' changes: whichever write is issued last carries the latest
    /// state. An empty record is deleted, so an empty object stores nothing.
    pub async fn persist(&self, storage: &Storage) -> Result<()> {
        let current = self.meta.borrow().clone().unwrap_or_default();
        if current.is_empty() {
            storage.delete(META_KEY).await?;
        } else {
            crate::stored::put(storage, META_KEY, &current).await?;
        }
        Ok(())
    }

    /// Points the runtime's alarm at the record's current `alarm_ms`, read
    /// when the call is issued, for the same reason as [`CachedRecord::persist`]:
    /// an interleaved handler's older value must never be the last one set.
    pub async fn sync_alarm(&self, storage: &Storage) -> Result<()> {
        let wanted = self.meta.borrow().as_ref().and_then(|r| r.alarm_ms);
        match wanted {
            Some(at_ms) => crate::runtime::set_alarm(storage, at_ms).await,
            None => storage.delete_alarm().await,
        }
    }
}
