//! Every deadline an object keeps, in one table ([`TimerTable`]) with one
//! enum of kinds ([`Timer`]): the earliest entry is the object's one alarm,
//! and when the alarm fires the machine handles the kinds that are due, in
//! the table's order (as quinn-proto's `TimerTable` and `handle_timeout`).
//!
//! The sweep's deadline is stored in the record (it follows the live
//! peers' last signs of life, which the record does not hold); the others
//! are read off the record's own entries, so they cannot drift from them.

use crate::peer::Limits;
use crate::record::{Record, Tracked};

/// A kind of deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// The earliest block ends: forget the blocks that have ended.
    Unblock,
    /// Look for a peer that fell silent (see [`Limits::next_sweep_ms`]).
    Sweep,
    /// The earliest pending LEAVE is due.
    Leave,
    /// The oldest queued message is due to expire.
    Expire,
}

impl Timer {
    /// The order in which due timers are handled: a sweep's retirements
    /// come before the LEAVEs, so a LEAVE that is due never reaches a peer
    /// the same alarm retires.
    pub const ALL: [Timer; 4] = [Timer::Unblock, Timer::Sweep, Timer::Leave, Timer::Expire];
}

/// When each kind of deadline falls, if it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerTable([Option<u64>; 4]);

impl TimerTable {
    pub fn of(record: &Record, limits: &Limits) -> Self {
        let mut table = TimerTable([None; 4]);
        table.set(
            Timer::Unblock,
            record.blocks.iter().map(|b| b.until_ms).min(),
        );
        table.set(Timer::Sweep, record.sweep_due_ms);
        table.set(Timer::Leave, record.leaves.iter().map(|l| l.due_ms).min());
        let expire = limits.expire_timeout_ms;
        let first_expiry = record.queue.iter().map(|q| q.queued_ms + expire).min();
        table.set(Timer::Expire, first_expiry);
        table
    }

    fn set(&mut self, timer: Timer, at_ms: Option<u64>) {
        self.0[timer as usize] = at_ms;
    }

    pub fn get(&self, timer: Timer) -> Option<u64> {
        self.0[timer as usize]
    }

    /// The alarm: the earliest deadline.
    pub fn next(&self) -> Option<u64> {
        self.0.iter().flatten().min().copied()
    }

    /// The kinds due at `now_ms`, in [`Timer::ALL`]'s order.
    pub fn due(&self, now_ms: u64) -> impl Iterator<Item = Timer> + '_ {
        Timer::ALL
            .into_iter()
            .filter(move |t| self.get(*t).is_some_and(|at| at <= now_ms))
    }
}

/// Points the record's alarm at the earliest entry of its table, keeping
/// the sweep in step with the live peers first (`seen`: the earliest last
/// sign of life among them, `None` when there are none; see
/// [`Limits::planned_sweep`]). Writes only what differs, so a record
/// that keeps its deadlines is not marked changed.
pub(crate) fn plan_alarm(record: &mut Tracked, limits: &Limits, seen: Option<u64>, now_ms: u64) {
    let sweep = limits.planned_sweep(record.sweep_due_ms, seen, now_ms);
    if sweep != record.sweep_due_ms {
        record.sweep_due_ms = sweep;
    }
    let wanted = TimerTable::of(record, limits).next();
    if wanted != record.alarm_ms {
        record.alarm_ms = wanted;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{PendingLeave, Queued};

    #[test]
    fn the_alarm_is_the_earliest_entry_and_due_kinds_come_in_order() {
        let limits = Limits::default();
        let record = Record {
            queue: vec![Queued {
                seq: 0,
                src: "a".into(),
                dst: "b".into(),
                bytes: 1,
                queued_ms: 100,
            }],
            leaves: vec![PendingLeave {
                id: "c".into(),
                due_ms: 50,
                cause: crate::metrics::LeaveCause::Closed,
                proven: false,
            }],
            sweep_due_ms: Some(40),
            ..Record::default()
        };
        let table = TimerTable::of(&record, &limits);
        assert_eq!(table.next(), Some(40));
        assert_eq!(
            table.get(Timer::Expire),
            Some(100 + limits.expire_timeout_ms)
        );
        let due: Vec<Timer> = table.due(60).collect();
        assert_eq!(due, [Timer::Sweep, Timer::Leave]);
    }
}
