//! The alarm: each due deadline of the timer table handled in order, the
//! LEAVEs announced and the queue expired, and the notices they send.

use super::*;

impl<'a, S: Copy + Eq> Turn<'a, S> {
    /// The alarm fired: the runtime cleared it; each due timer is handled
    /// in [`Timer::ALL`]'s order, each judged after the ones before (a
    /// sweep's timeout LEAVE is due at once), then the alarm is planned again.
    pub(super) fn alarm(&mut self) {
        self.rec.alarm_fired();
        // When the shard sweeps, an alarm (a LEAVE, an expiry, or the
        // fallback after a failed report) sweeps too: it costs a scan.
        self.handle_due(self.limits.shard_sweeps);
    }

    /// The shard's call: a sweep, and whatever else is due; answers when
    /// the next is wanted.
    pub(super) fn sweep(&mut self) {
        let live = self.handle_due(true);
        let next = live.map(|seen| self.limits.next_sweep_ms(seen, self.now));
        self.fx.answer = Some(Answer::Swept {
            next_sweep_ms: next,
        });
    }

    /// Handles each due timer (the sweep also when `sweep` says so), then
    /// plans the alarm; answers the oldest sign of life among the peers
    /// still live.
    fn handle_due(&mut self, sweep: bool) -> Option<u64> {
        let mut retired: Vec<S> = Vec::new();
        for timer in Timer::ALL {
            let due = TimerTable::of(&self.rec, self.limits).get(timer);
            let forced = sweep && timer == Timer::Sweep;
            if !forced && due.is_none_or(|at| at > self.now) {
                continue;
            }
            match timer {
                Timer::Unblock => {
                    let now = self.now;
                    self.rec.blocks.retain(|b| b.until_ms > now);
                }
                Timer::Sweep => {
                    if self.rec.sweep_due_ms.is_some() {
                        self.rec.sweep_due_ms = None;
                    }
                    let stale: Vec<&PeerView<S>> = self
                        .live()
                        .filter(|p| p.is_stale(self.now, self.limits))
                        .collect();
                    for peer in stale {
                        self.retire(peer, LeaveCause::Timeout, None);
                        retired.push(peer.socket);
                    }
                }
                Timer::Leave => self.announce_leaves(&retired),
                Timer::Expire => self.expire(&retired),
            }
        }
        self.forget_unowned_correspondents(&retired);
        let live = self.live().filter(|p| !retired.contains(&p.socket));
        let seen = oldest_seen(live);
        self.plan_alarm(seen);
        seen
    }

    /// Announces the LEAVEs that are due, of ids not back since: to
    /// everyone here in a room, to the leaver's recent correspondents in the
    /// open namespace (here, or through their objects).
    pub(super) fn announce_leaves(&mut self, retired: &[S]) {
        let now = self.now;
        let (due, later): (Vec<PendingLeave>, Vec<PendingLeave>) =
            std::mem::take(&mut self.rec.leaves)
                .into_iter()
                .partition(|l| l.due_ms <= now);
        self.rec.leaves = later;
        let live: Vec<&PeerView<S>> = self
            .live()
            .filter(|p| !retired.contains(&p.socket))
            .collect();
        for leave in due {
            if live.iter().any(|p| p.state.id == leave.id) {
                continue; // came back
            }
            let told = if self.m.placement.keeps_correspondents() {
                self.tell_correspondents(&leave.id, &live)
            } else {
                for p in &live {
                    self.fx.op(SocketOp::Send {
                        to: Recipient::Peer(p.socket),
                        text: frame::render_leave(&leave.id, &p.state.id),
                    });
                }
                live.len()
            };
            self.fx.count(Counter::Leave(leave.cause), 1);
            self.fx.log(
                LogEvent::new(Level::Info, "leave")
                    .peer(&leave.id)
                    .field("cause", leave.cause.label())
                    .field("told", told),
            );
        }
    }

    /// Sends `gone`'s LEAVE to its recent correspondents and forgets them;
    /// answers how many were told.
    pub(super) fn tell_correspondents(&mut self, gone: &str, live: &[&PeerView<S>]) -> usize {
        let home = self.m.placement.home();
        let now = self.now;
        if !self.rec.correspondents.iter().any(|c| c.is_of(gone, home)) {
            return 0;
        }
        let (theirs, kept): (Vec<Correspondent>, Vec<Correspondent>) =
            std::mem::take(&mut self.rec.correspondents)
                .into_iter()
                .partition(|c| c.is_of(gone, home));
        self.rec.correspondents = kept;
        let fresh = theirs
            .into_iter()
            .filter(|c| now.saturating_sub(c.seen_ms) < CORRESPONDENT_TTL_MS);
        let mut told = 0;
        for c in fresh {
            told += 1;
            let text = frame::render_leave(gone, &c.id);
            self.notify(gone, &c.id, RelayKind::Leave, text, live);
        }
        told
    }

    /// A notice from `src` for `dst`: onto `dst`'s socket if it lives here
    /// and is live, else to its object if it lives elsewhere.
    pub(super) fn notify(
        &mut self,
        src: &str,
        dst: &str,
        kind: RelayKind,
        text: String,
        live: &[&PeerView<S>],
    ) {
        if self.m.placement.lives_here(dst) {
            if let Some(p) = live.iter().find(|p| p.state.id == dst) {
                self.fx.op(SocketOp::Send {
                    to: Recipient::Peer(p.socket),
                    text,
                });
            }
            return;
        }
        self.forward(Parcel {
            src: src.to_owned(),
            dst: dst.to_owned(),
            kind,
            text,
            notice: true,
        });
    }

    /// EXPIRE: once a (sender, destination) pair has an expired message, the
    /// whole pair goes, and the sender is told once.
    pub(super) fn expire(&mut self, retired: &[S]) {
        let (now, expire) = (self.now, self.limits.expire_timeout_ms);
        let mut pairs: Vec<(String, String)> = self
            .rec
            .queue
            .iter()
            .filter(|q| q.queued_ms + expire <= now)
            .map(|q| (q.src.clone(), q.dst.clone()))
            .collect();
        crate::order::sort_small_by(&mut pairs, Ord::cmp);
        pairs.dedup();
        let (gone, kept): (Vec<Queued>, Vec<Queued>) = std::mem::take(&mut self.rec.queue)
            .into_iter()
            .partition(|q| pairs.contains(&(q.src.clone(), q.dst.clone())));
        self.rec.queue = kept;
        let live: Vec<&PeerView<S>> = self
            .live()
            .filter(|p| !retired.contains(&p.socket))
            .collect();
        for (src, dst) in &pairs {
            let text = frame::render_expire(dst, src);
            self.notify(dst, src, RelayKind::Expire, text, &live);
            self.fx.log(
                LogEvent::new(Level::Info, "expire")
                    .peer(src)
                    .field("dst", dst.as_str()),
            );
        }
        self.fx.count(Counter::Expired, gone.len() as u64);
        self.fx.deletes.extend(gone.iter().map(Queued::key));
    }
}
