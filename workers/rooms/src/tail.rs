//! What every handler of a room or a home does around the core's call:
//! load the record and read the sockets, run the core without yielding,
//! then carry out its [`Step`] in one fixed order: read the frames it
//! delivers, the core's own socket interpreter, counters, logs, storage,
//! the alarm. The forwards of an open-namespace step go into the home's
//! outbox right after the socket operations, before any storage await, so
//! a sender's parcels keep their order; the caller then drains it.

use crate::outbox::Outbox;
use crate::record::Record;
use crate::runtime::{self, RawState};
use crate::sockets::{Read, RoomSockets, SocketList};
use crate::stats::Reporter;
use signaling_core::log::Level;
use signaling_core::peer::PeerView;
use signaling_core::step::{carry_out, DurableRecord, Step};
use std::collections::BTreeMap;
use worker::{Result, State, WebSocket};

/// One object's parts the tail works on.
pub struct Tail<'a, M> {
    pub state: &'a State,
    pub raw: &'a RawState,
    pub list: &'a SocketList,
    pub record: &'a Record<M>,
    pub stats: &'a Reporter,
    pub log_level: Level,
    /// The room the log lines name (`None` for a home: its lines name the peer).
    pub room: Option<&'a str>,
    /// A home's outbox; `None` for a room, whose steps forward nothing.
    pub outbox: Option<&'a Outbox>,
}

impl<M: DurableRecord> Tail<'_, M> {
    /// Runs one core handler on the in-memory record, then [`Tail::finish`].
    /// From the record's load to the end of `handler` nothing yields, and
    /// the handler changes the object's one copy of the record: an event
    /// that gets in during a later await starts from this change, never from
    /// a stale copy (which would drop queued messages or leave the alarm at
    /// an old time). `handler` answers `None` when it has nothing to do.
    pub async fn run<F>(&self, read: Read, joiner: Option<&WebSocket>, handler: F) -> Result<()>
    where
        F: FnOnce(&mut M, &[WebSocket], &[PeerView<usize>], u64) -> Option<Step<usize>>,
    {
        self.record.load(self.state).await?;
        let (sockets, peers) = self.list.peers(self.state, self.raw, read);
        let now = runtime::now_ms();
        let step = self
            .record
            .change(|meta| handler(meta, &sockets, &peers, now));
        match step {
            Some(step) => self.finish(&sockets, joiner, step).await,
            None => Ok(()),
        }
    }

    /// The one tail of every handler.
    pub async fn finish(
        &self,
        sockets: &[WebSocket],
        joiner: Option<&WebSocket>,
        step: Step<usize>,
    ) -> Result<()> {
        let reads = step.reads();
        let mut stored = BTreeMap::new();
        if !reads.is_empty() {
            let found = self.state.storage().get_multiple(reads.clone()).await?;
            for key in reads {
                if let Some(text) = found.get(&key.as_str().into()).as_string() {
                    stored.insert(key, text);
                }
            }
        }
        let mut runtime_sockets = RoomSockets {
            state: self.state,
            list: self.list,
            sockets,
            joiner,
        };
        carry_out(&step.ops, &stored, &mut runtime_sockets)?;
        if let Some(outbox) = self.outbox {
            outbox.push(step.forwards, self.stats);
        }
        for (counter, by) in step.counts {
            self.stats.add(counter, by);
        }
        for event in &step.logs {
            runtime::log(self.log_level, self.room, event);
        }
        let touches_storage = !step.puts.is_empty()
            || !step.deletes.is_empty()
            || step.record_changed
            || step.alarm_changed;
        if !touches_storage {
            return Ok(()); // a relay: no storage handle made
        }
        let storage = self.state.storage();
        for (key, text) in &step.puts {
            storage.put(key, text).await?;
        }
        if !step.deletes.is_empty() {
            storage.delete_multiple(step.deletes).await?;
        }
        if step.record_changed {
            self.record.persist(&storage).await?;
        }
        if step.alarm_changed {
            self.record.sync_alarm(&storage).await?;
        }
        Ok(())
    }
}
