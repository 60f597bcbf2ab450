//! The durable record of one object ([`Record`]: one storage key, in rooms
//! and in the open namespace alike) and the wrapper through which the
//! machine changes it ([`Tracked`]), which knows by itself whether the
//! record changed and whether the alarm it names did.

use crate::metrics::LeaveCause;
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use std::ops::{Deref, DerefMut};

/// What one object remembers between events. Empty means "nothing to
/// remember": the caller then deletes the key, so an object that is done
/// stores nothing and has no alarm.
///
/// Reads the records written before rooms and homes shared one machine: a
/// room's (the same fields) and a home's (`inbox` for `queue`, one `leave`
/// for `leaves`, correspondents without their owner).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub next_seq: u64,
    /// Messages waiting for an absent id that lives here, in arrival order
    /// (their frames are in storage under [`Queued::key`]).
    #[serde(alias = "inbox")]
    pub queue: Vec<Queued>,
    /// Ids whose socket closed; each LEAVE goes out at its `due_ms` unless
    /// the id is back.
    #[serde(default, alias = "leave", deserialize_with = "one_or_many")]
    pub leaves: Vec<PendingLeave>,
    /// When the next liveness sweep is due (only while sockets exist).
    pub sweep_due_ms: Option<u64>,
    /// The alarm currently set, as far as this record knows.
    pub alarm_ms: Option<u64>,
    /// Ids a moderator removed and blocked from rejoining, until when
    /// (rooms only; see `moderation.rs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocks: Vec<Block>,
    /// Open namespace: the ids each id here exchanged signaling with
    /// recently, who get its LEAVE (see `placement.rs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub correspondents: Vec<Correspondent>,
}

impl Record {
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
            && self.leaves.is_empty()
            && self.blocks.is_empty()
            && self.correspondents.is_empty()
            && self.sweep_due_ms.is_none()
            && self.alarm_ms.is_none()
    }

    pub fn queued_bytes(&self) -> usize {
        self.queue.iter().map(|q| q.bytes).sum()
    }
}

/// A message waiting in storage for its destination to join.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queued {
    pub seq: u64,
    pub src: String,
    pub dst: String,
    pub bytes: usize,
    pub queued_ms: u64,
}

impl Queued {
    /// Storage key of the rendered frame; zero-padded so keys sort by `seq`.
    pub fn key(&self) -> String {
        queued_key(self.seq)
    }
}

/// Storage key of a queued frame.
pub fn queued_key(seq: u64) -> String {
    format!("q/{seq:020}")
}

/// A peer whose socket closed; LEAVE goes out at `due_ms` unless it is back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingLeave {
    pub id: String,
    pub due_ms: u64,
    pub cause: LeaveCause,
    /// The id was proven: only a proven join may claim it during the grace.
    #[serde(default)]
    pub proven: bool,
}

/// An id that may not join the room before `until_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    pub id: String,
    /// The ticket the removed peer joined with (see
    /// [`crate::machine::Join::holder`]): another id with the same ticket is
    /// refused too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
    pub until_ms: u64,
}

/// How many recent correspondents one id remembers for its `LEAVE` (the
/// least recently seen makes room). Bounded by the socket attachment's
/// 2 KiB, where a live id keeps them: 16 ids of the longest (64 bytes) and
/// their times fit beside the rest.
pub const MAX_CORRESPONDENTS: usize = 16;
/// A correspondent not heard from or written to for this long is forgotten.
pub const CORRESPONDENT_TTL_MS: u64 = 10 * 60_000;

/// An id that `of` exchanged signaling with, and when it last did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Correspondent {
    /// The id here whose correspondent this is; empty in a record written
    /// when a home held one id, whose correspondents it then was.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub of: String,
    pub id: String,
    pub seen_ms: u64,
}

impl Correspondent {
    pub(crate) fn is_of(&self, id: &str, home: Option<&str>) -> bool {
        self.of == id || (self.of.is_empty() && home == Some(id))
    }
}

/// `leaves` as a list, or as the one optional `leave` of a home's record.
/// A visitor, not an untagged enum: serde buffers an untagged enum's input
/// in its `Content` type, and that machinery cost the rooms bundle 2.2 KiB
/// gzipped for this one field.
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<PendingLeave>, D::Error> {
    struct Leaves;
    impl<'de> Visitor<'de> for Leaves {
        type Value = Vec<PendingLeave>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list of pending leaves, one, or null")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            Vec::deserialize(SeqAccessDeserializer::new(seq))
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            Ok(vec![PendingLeave::deserialize(
                MapAccessDeserializer::new(map),
            )?])
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
    }
    d.deserialize_any(Leaves)
}

/// The record as one handler changes it: any mutable access marks it
/// changed, so the write-back never hangs on a flag set by hand. Read
/// before writing: a mutable access that changes nothing still costs a
/// write.
pub struct Tracked<'r> {
    record: &'r mut Record,
    changed: bool,
    alarm_before: Option<u64>,
}

impl<'r> Tracked<'r> {
    pub fn new(record: &'r mut Record) -> Self {
        let alarm_before = record.alarm_ms;
        Tracked {
            record,
            changed: false,
            alarm_before,
        }
    }

    /// The runtime fired (and so cleared) the alarm.
    pub(crate) fn alarm_fired(&mut self) {
        if self.record.alarm_ms.is_some() {
            self.alarm_ms = None;
        }
        self.alarm_before = None;
    }

    /// Whether the record changed, and whether its alarm did.
    pub fn changes(&self) -> (bool, bool) {
        (self.changed, self.record.alarm_ms != self.alarm_before)
    }
}

impl Deref for Tracked<'_> {
    type Target = Record;
    fn deref(&self) -> &Record {
        self.record
    }
}

impl DerefMut for Tracked<'_> {
    fn deref_mut(&mut self) -> &mut Record {
        self.changed = true;
        self.record
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_home_record_written_before_one_machine_still_reads() {
        let home = r#"{"next_seq":3,"inbox":[{"seq":2,"src":"bob","dst":"amy","bytes":9,"queued_ms":5}],
            "leave":{"id":"amy","due_ms":50,"cause":"Closed","proven":false},
            "correspondents":[{"id":"bob","seen_ms":4}],"sweep_due_ms":null,"alarm_ms":50}"#;
        let record: Record = serde_json::from_str(home).unwrap_or_default();
        assert_eq!(record.queue.len(), 1);
        assert_eq!(record.leaves.len(), 1);
        assert!(record.correspondents[0].is_of("amy", Some("amy")));
        assert!(!record.correspondents[0].is_of("amy", None));
        let idle = r#"{"next_seq":0,"inbox":[],"leave":null,"correspondents":[],"sweep_due_ms":null,"alarm_ms":null}"#;
        let record: Record = serde_json::from_str(idle).unwrap_or_else(|_| Record {
            next_seq: 99,
            ..Record::default()
        });
        assert!(record.is_empty() && record.next_seq == 0);
    }

    #[test]
    fn only_a_mutable_access_marks_the_record_changed() {
        let mut record = Record::default();
        let mut tracked = Tracked::new(&mut record);
        let _ = tracked.queue.len();
        assert_eq!(tracked.changes(), (false, false));
        tracked.alarm_ms = Some(7);
        assert_eq!(tracked.changes(), (true, true));
    }
}
