//! The open namespace's correspondents: who exchanged signaling with an
//! id here recently, and so gets its LEAVE.

use super::*;

/// How many recent correspondents one id remembers for its `LEAVE`.
pub const MAX_CORRESPONDENTS: usize = 32;
/// A correspondent not heard from or written to for this long is forgotten.
pub const CORRESPONDENT_TTL_MS: u64 = 10 * 60_000;
/// A known correspondent's time is refreshed (a record write) at most this often.
const CORRESPONDENT_REFRESH_MS: u64 = CORRESPONDENT_TTL_MS / 4;

impl<'a, S: Copy + Eq> Turn<'a, S> {
    /// Notes that `of` (an id here) exchanged signaling with `id`; writes the
    /// record only for a new correspondent or a refresh that is due.
    pub(super) fn remember(&mut self, of: &str, id: &str) {
        if !self.m.placement.keeps_correspondents() || id == of {
            return;
        }
        let (home, now) = (self.m.placement.home(), self.now);
        let known = self
            .rec
            .correspondents
            .iter()
            .position(|c| c.is_of(of, home) && c.id == id);
        if let Some(i) = known {
            if now.saturating_sub(self.rec.correspondents[i].seen_ms) >= CORRESPONDENT_REFRESH_MS {
                self.rec.correspondents[i].seen_ms = now;
            }
            return;
        }
        let fresh = |c: &Correspondent| now.saturating_sub(c.seen_ms) < CORRESPONDENT_TTL_MS;
        if !self.rec.correspondents.iter().all(fresh) {
            self.rec.correspondents.retain(fresh);
        }
        let theirs = self.rec.correspondents.iter().filter(|c| c.is_of(of, home));
        if theirs.count() >= MAX_CORRESPONDENTS {
            // The least recently seen makes room.
            let oldest = self
                .rec
                .correspondents
                .iter()
                .enumerate()
                .filter(|(_, c)| c.is_of(of, home))
                .min_by_key(|(_, c)| c.seen_ms)
                .map(|(i, _)| i);
            if let Some(i) = oldest {
                self.rec.correspondents.remove(i);
            }
        }
        self.rec.correspondents.push(Correspondent {
            of: of.to_owned(),
            id: id.to_owned(),
            seen_ms: now,
        });
    }

    /// `id` is gone (its object told `of`): no LEAVE of `of`'s is owed to it.
    pub(super) fn forget(&mut self, of: &str, id: &str) {
        let home = self.m.placement.home();
        let theirs = |c: &Correspondent| c.is_of(of, home) && c.id == id;
        if self.rec.correspondents.iter().any(theirs) {
            self.rec.correspondents.retain(|c| !theirs(c));
        }
    }

    /// Correspondents of an id that is neither live here nor owed a LEAVE
    /// are worth nothing: nobody will be told.
    pub(super) fn forget_unowned_correspondents(&mut self, retired: &[S]) {
        let home = self.m.placement.home();
        let live: Vec<&str> = self
            .live()
            .filter(|p| !retired.contains(&p.socket))
            .map(|p| p.state.id.as_str())
            .collect();
        let owned = |c: &Correspondent, leaves: &[PendingLeave]| {
            live.iter().any(|id| c.is_of(id, home)) || leaves.iter().any(|l| c.is_of(&l.id, home))
        };
        let leaves = self.rec.leaves.clone();
        if !self.rec.correspondents.iter().all(|c| owned(c, &leaves)) {
            self.rec.correspondents.retain(|c| owned(c, &leaves));
        }
    }
}
