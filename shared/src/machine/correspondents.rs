//! The open namespace's correspondents: who exchanged signaling with an
//! id here recently, and so gets its LEAVE.
//!
//! A live id's correspondents are in its socket's attachment
//! ([`PeerState::correspondents`]): noting one is a `SaveState` of that
//! socket, never a storage write, and the runtime keeps attachments through
//! hibernation. When the id's socket goes (closed, retired, kicked), its
//! list moves into the record with its pending LEAVE (written then anyway)
//! and is told when the LEAVE goes out; an id back within the grace takes
//! it back into its new socket, as a takeover takes the replaced socket's.

use super::*;

/// A known correspondent's time is refreshed (an attachment write) at most this often.
const CORRESPONDENT_REFRESH_MS: u64 = CORRESPONDENT_TTL_MS / 4;

impl<'a, S: Copy + Eq> Turn<'a, S> {
    /// Notes that `of` (an id live here, or joining) exchanged signaling
    /// with `id`; writes `of`'s attachment only for a new correspondent or
    /// a refresh that is due.
    pub(super) fn remember(&mut self, of: &str, id: &str) {
        if !self.m.placement.keeps_correspondents() || id == of {
            return;
        }
        let now = self.now;
        let Some(state) = self.state_of(of) else {
            return; // not live here: nobody to tell its LEAVE for
        };
        let known = state.correspondents.iter().position(|c| c.id == id);
        if let Some(i) = known {
            if now.saturating_sub(state.correspondents[i].seen_ms) < CORRESPONDENT_REFRESH_MS {
                return;
            }
        }
        let Some(state) = self.state_mut(of) else {
            return;
        };
        let list = &mut state.correspondents;
        if let Some(i) = known {
            list[i].seen_ms = now;
            return;
        }
        list.retain(|c| now.saturating_sub(c.seen_ms) < CORRESPONDENT_TTL_MS);
        if list.len() >= MAX_CORRESPONDENTS {
            if let Some(oldest) = (0..list.len()).min_by_key(|&i| list[i].seen_ms) {
                list.remove(oldest);
            }
        }
        list.push(Correspondent {
            of: String::new(),
            id: id.to_owned(),
            seen_ms: now,
        });
    }

    /// `id` is gone (its object told `of`): no LEAVE of `of`'s is owed to it.
    pub(super) fn forget(&mut self, of: &str, id: &str) {
        let knows = |state: &PeerState| state.correspondents.iter().any(|c| c.id == id);
        if self.state_of(of).is_some_and(knows) {
            if let Some(state) = self.state_mut(of) {
                state.correspondents.retain(|c| c.id != id);
            }
        }
        let home = self.m.placement.home();
        let theirs = |c: &Correspondent| c.is_of(of, home) && c.id == id;
        if self.rec.correspondents.iter().any(theirs) {
            self.rec.correspondents.retain(|c| !theirs(c));
        }
    }

    /// `peer`'s socket is going and its LEAVE is scheduled: its
    /// correspondents move into the record, to be told when it goes out.
    pub(super) fn keep_for_leave(&mut self, peer: &PeerView<S>) {
        if !self.m.placement.keeps_correspondents() {
            return;
        }
        // As this step last saved the socket's attachment, else as the view has it.
        let state = self.pending_state(peer.socket).unwrap_or(&peer.state);
        if state.correspondents.is_empty() {
            return;
        }
        let list = state.correspondents.clone();
        let of = peer.state.id.as_str();
        let home = self.m.placement.home();
        let rec = &mut self.rec.correspondents;
        rec.retain(|c| !(c.is_of(of, home) && list.iter().any(|k| k.id == c.id)));
        rec.extend(list.into_iter().map(|c| Correspondent {
            of: of.to_owned(),
            ..c
        }));
    }

    /// What a socket joining as `id` starts with: the correspondents of the
    /// sockets it replaces and those the record kept for its pending LEAVE
    /// (taken out of the record: the id is back).
    pub(super) fn inherited(&mut self, id: &str, replaced: &[S]) -> Vec<Correspondent> {
        if !self.m.placement.keeps_correspondents() {
            return Vec::new();
        }
        let mut list: Vec<Correspondent> = self
            .peers
            .iter()
            .filter(|p| p.state.id == id && replaced.contains(&p.socket))
            .flat_map(|p| p.state.correspondents.iter().cloned())
            .collect();
        let home = self.m.placement.home();
        if self.rec.correspondents.iter().any(|c| c.is_of(id, home)) {
            let (kept, rest): (Vec<Correspondent>, Vec<Correspondent>) =
                std::mem::take(&mut self.rec.correspondents)
                    .into_iter()
                    .partition(|c| c.is_of(id, home));
            self.rec.correspondents = rest;
            list.extend(kept);
        }
        // The most recent of each id, the most recent ids first, within the bound.
        let now = self.now;
        list.retain(|c| now.saturating_sub(c.seen_ms) < CORRESPONDENT_TTL_MS);
        crate::order::sort_small_by(&mut list, |a, b| b.seen_ms.cmp(&a.seen_ms));
        let mut unique: Vec<Correspondent> = Vec::new();
        for c in list {
            if unique.len() < MAX_CORRESPONDENTS && !unique.iter().any(|u| u.id == c.id) {
                unique.push(Correspondent {
                    of: String::new(),
                    ..c
                });
            }
        }
        unique
    }

    /// Correspondents the record holds for an id that is neither live here
    /// nor owed a LEAVE are worth nothing: nobody will be told.
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

    /// The attachment `id`'s socket has now: as this step last set it (the
    /// joiner's, or a live socket's), else as the view shows it.
    fn state_of(&self, id: &str) -> Option<&PeerState> {
        if let Some(state) = self.fx.ops.iter().rev().find_map(|op| match op {
            SocketOp::Accept { state } if state.id == id => Some(state),
            _ => None,
        }) {
            return Some(state);
        }
        let holder = self.live_holder(id)?;
        let state = self.pending_state(holder.socket).unwrap_or(&holder.state);
        (!state.closing).then_some(state)
    }

    /// The attachment this step last set for `socket`, if any.
    fn pending_state(&self, socket: S) -> Option<&PeerState> {
        self.fx.ops.iter().rev().find_map(|op| match op {
            SocketOp::SaveState { socket: s, state } if *s == socket => Some(state),
            _ => None,
        })
    }

    /// `id`'s attachment, to change: the joiner's `Accept`, or this step's
    /// `SaveState` of its socket (made from the view if there is none yet).
    fn state_mut(&mut self, id: &str) -> Option<&mut PeerState> {
        let joining = self
            .fx
            .ops
            .iter()
            .rposition(|op| matches!(op, SocketOp::Accept { state } if state.id == id));
        let at = match joining {
            Some(i) => i,
            None => {
                let holder = self.live_holder(id)?;
                let socket = holder.socket;
                let saved = self.fx.ops.iter().rposition(
                    |op| matches!(op, SocketOp::SaveState { socket: s, .. } if *s == socket),
                );
                match saved {
                    Some(i) => i,
                    None => {
                        let state = holder.state.clone();
                        self.fx.op(SocketOp::SaveState { socket, state });
                        self.fx.ops.len() - 1
                    }
                }
            }
        };
        match &mut self.fx.ops[at] {
            SocketOp::Accept { state } | SocketOp::SaveState { state, .. } if !state.closing => {
                Some(state)
            }
            _ => None,
        }
    }
}
