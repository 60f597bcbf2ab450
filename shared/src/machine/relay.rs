//! Frames on their way: a client's frame relayed here, queued for an absent
//! id, or forwarded to another object; deliveries from other objects; and
//! what the server answers for a frame it drops (EXPIRE, sampled logs).

use super::*;

impl<'a, S: Copy + Eq> Turn<'a, S> {
    /// A frame arrived on `from`: relayed to a live peer here, queued for an
    /// absent id that lives here, or forwarded to the object of an id that
    /// lives elsewhere. Judges no staleness, so it never reads
    /// `heartbeat_ms`: the host may leave it `None` and skip a runtime call
    /// per socket per frame.
    pub(super) fn frame(&mut self, from: S, bytes: &[u8]) {
        let limits = self.limits;
        let flood = &mut *self.flood;
        let (sender, kind, dst, payload) = match admit_frame(
            &mut self.fx,
            limits,
            self.peers,
            from,
            bytes,
            flood,
            self.now,
        ) {
            Admitted::Relay {
                sender,
                kind,
                dst,
                payload,
            } => (sender, kind, dst, payload),
            Admitted::Kick { sender, why } => return self.kick(sender, why),
            Admitted::Done => return,
        };
        let id = sender.state.id.as_str();
        let placement = self.m.placement;
        if placement.bounds_destinations() && dst.as_ref() != id {
            let limit = self.limits.max_new_destinations_per_minute;
            if !self.flood.may_reach(id, &dst, limit, self.now) {
                let (flood, reason) = (&mut *self.flood, DropReason::RateLimited);
                judge_drop(&mut self.fx, flood, id, reason, bytes.len(), self.now);
                return self.kick(sender, Some(KickFor::Destinations));
            }
        }
        let text = frame::render_relay(kind, id, &dst, payload);
        // Signaling makes a correspondent, wherever the frame goes.
        if kind.is_queueable() {
            self.remember(id, &dst);
        }
        if !placement.lives_here(&dst) {
            if kind.is_queueable() {
                self.plan_alarm(oldest_attached_seen(self.live()));
            }
            self.forward(Parcel {
                src: id.to_owned(),
                dst: dst.into_owned(),
                kind,
                text,
                notice: false,
            });
            return;
        }
        if let Some(target) = self.live_holder(&dst) {
            self.fx.op(SocketOp::Send {
                to: Recipient::Peer(target.socket),
                text,
            });
            self.fx.count(Counter::Relayed(kind), 1);
            if kind.is_queueable() {
                self.remember(&dst, id);
            }
            return;
        }
        self.queue(id, &dst, kind, text, bytes.len());
    }

    /// A message for `dst`, an absent id that lives here: it waits, within
    /// the placement's bounds (answers `true`), or is dropped and judged; a
    /// queueable one dropped for a full queue is answered with EXPIRE, as
    /// if it had waited and expired, so no sender waits for it in vain.
    pub(super) fn queue(
        &mut self,
        src: &str,
        dst: &str,
        kind: RelayKind,
        text: String,
        judged_bytes: usize,
    ) -> bool {
        if !kind.is_queueable() {
            self.drop_relay(src, dst, DropReason::OfflineNotQueued, judged_bytes);
            return false;
        }
        if !self
            .m
            .placement
            .may_queue(self.limits, &self.rec, src, text.len())
        {
            self.drop_relay(src, dst, DropReason::QueueFull, judged_bytes);
            self.expire_back(src, dst);
            return false;
        }
        let queued = Queued {
            seq: self.rec.next_seq,
            src: src.to_owned(),
            dst: dst.to_owned(),
            bytes: text.len(),
            queued_ms: self.now,
        };
        self.rec.next_seq += 1;
        self.fx.puts.push((queued.key(), text));
        self.fx.count(Counter::Queued, 1);
        self.fx.log(
            LogEvent::new(Level::Debug, "queue")
                .peer(src)
                .field("dst", dst)
                .field("type", kind.as_str()),
        );
        self.rec.queue.push(queued);
        self.plan_alarm(oldest_attached_seen(self.live()));
        true
    }

    /// Drops a relay from `src` to `dst`: a sender here is judged for it
    /// (its drops logged once per window); one from another object is only
    /// counted and logged at debug here, and its own object logs it
    /// ([`Input::DroppedAway`]).
    pub(super) fn drop_relay(&mut self, src: &str, dst: &str, reason: DropReason, bytes: usize) {
        if self.m.placement.lives_here(src) {
            let flood = &mut *self.flood;
            judge_drop(&mut self.fx, flood, src, reason, bytes, self.now);
            return;
        }
        self.fx.count(Counter::Dropped(reason), 1);
        self.fx.log(
            LogEvent::new(Level::Debug, "drop")
                .peer(src)
                .field("dst", dst)
                .field("reason", reason.label())
                .field("bytes", bytes),
        );
        if !self.dropped_from.iter().any(|s| s == src) {
            self.dropped_from.push(src.to_owned());
        }
    }

    /// The object `to` dropped relays from `senders`: one warn line per
    /// sender per window, as for a drop here.
    pub(super) fn dropped_away(&mut self, to: &str, senders: Vec<String>) {
        for src in senders {
            let level = match self.flood.note_drop(&src, DropKind::Blameless, self.now) {
                DropVerdict::Quiet => Level::Debug,
                _ => Level::Warn,
            };
            self.fx.log(
                LogEvent::new(level, "drop")
                    .peer(&src)
                    .field("reason", "dropped_by_destination")
                    .field("dst", to),
            );
        }
    }

    /// Tells `src` that its message to `dst` is lost (`EXPIRE` from `dst`),
    /// once per pair in a while ([`PeerFloodGuard::first_expire`]).
    pub(super) fn expire_back(&mut self, src: &str, dst: &str) {
        if !self.flood.first_expire(src, dst, self.now) {
            return;
        }
        let live: Vec<&PeerView<S>> = self.live().collect();
        let text = frame::render_expire(dst, src);
        self.notify(dst, src, RelayKind::Expire, text, &live);
        self.fx.log(
            LogEvent::new(Level::Debug, "expire")
                .peer(src)
                .field("dst", dst)
                .field("cause", "dropped"),
        );
    }

    /// Parcels of this object's that never reached their object: counted,
    /// and each queueable one's sender told EXPIRE.
    pub(super) fn undelivered(&mut self, parcels: Vec<Parcel>, reason: DropReason) {
        for parcel in parcels {
            if parcel.notice {
                self.fx.count(Counter::Dropped(DropReason::NoticeLost), 1);
                continue;
            }
            self.fx.count(Counter::Dropped(reason), 1);
            if parcel.kind.is_queueable() {
                self.expire_back(&parcel.src, &parcel.dst);
            }
        }
    }

    /// A frame of `len` bytes, over the limit and so never copied: dropped
    /// and judged like an oversized frame that was copied, without the copy.
    pub(super) fn too_large(&mut self, from: S, len: usize) {
        let flood = &mut *self.flood;
        let judged = judge_too_large(&mut self.fx, self.peers, from, len, flood, self.now);
        if let Some((sender, why)) = judged {
            self.kick(sender, Some(why));
        }
    }

    /// Parcels from another object, each for an id that lives here: onto
    /// its live socket, or into the queue (within the placement's bounds),
    /// or dropped. A delivery never forwards anything, so no frame travels
    /// twice and no loop is possible.
    pub(super) fn deliver(&mut self, parcels: Vec<Parcel>) {
        let mut report = DeliveryReport::default();
        for parcel in parcels {
            let (src, dst) = (parcel.src.as_str(), parcel.dst.as_str());
            if !self.m.placement.lives_here(dst) {
                self.fx.count(Counter::Dropped(DropReason::Unreachable), 1);
                self.fx.log(
                    LogEvent::new(Level::Warn, "drop")
                        .peer(src)
                        .field("reason", "misrouted")
                        .field("dst", dst),
                );
                report.dropped += 1;
                continue;
            }
            if let Some(holder) = self.live_holder(dst) {
                self.fx.op(SocketOp::Send {
                    to: Recipient::Peer(holder.socket),
                    text: parcel.text.clone(),
                });
                if !parcel.notice {
                    self.fx.count(Counter::Relayed(parcel.kind), 1);
                    if parcel.kind.is_queueable() {
                        self.remember(dst, src);
                    }
                } else if parcel.kind == RelayKind::Leave {
                    self.forget(dst, src);
                }
                report.sent += 1;
                continue;
            }
            if parcel.notice {
                report.dropped += 1; // news for an id that is gone: nobody to tell
                continue;
            }
            let len = parcel.text.len();
            if self.queue(src, dst, parcel.kind, parcel.text, len) {
                report.queued += 1;
            } else {
                report.dropped += 1;
            }
        }
        self.plan_alarm(oldest_attached_seen(self.live()));
        report.dropped_from = std::mem::take(&mut self.dropped_from);
        self.fx.answer = Some(Answer::Delivered(report));
    }
}
