//! A machine's members arriving and leaving: a join (the takeover rules,
//! capacity, the welcome with what waited), a close, and a peer retired or
//! kicked by the server.

use super::*;

impl<'a, S: Copy + Eq> Turn<'a, S> {
    /// A socket wants to hold `join.id`: refused while too many of its
    /// sockets are still closing, while it is blocked, while a proven id's
    /// grace runs, or while a holder it may not replace is live (see
    /// [`may_replace`]); in a room, also when the room is full after stale
    /// peers were retired. Then OPEN, and whatever waited for the id.
    pub(super) fn join(&mut self, join: Join) {
        let (fx, id) = (&mut self.fx, join.id.as_str());
        if let Some(msg) = too_many_closing(self.peers, id) {
            return refuse_try_again(fx, id, msg);
        }
        if let Some(until_ms) = blocked_until(&self.rec, id, join.holder.as_deref(), self.now) {
            return refuse_blocked(fx, id, until_ms, self.now);
        }
        if claims_proven_grace(&self.rec.leaves, id, join.proven) {
            return refuse_id_taken(fx, id, "proven_in_grace");
        }
        let mut closed: Vec<S> = Vec::new();
        for holder in self.live().filter(|p| p.state.id == id) {
            let same_client = self.m.placement.same_client_replaces()
                && join.holder.is_some()
                && holder.state.holder == join.holder;
            let stale = holder.is_stale(self.now, self.limits);
            if !may_replace(holder.state.proven, join.proven, same_client || stale) {
                let why = if holder.state.proven {
                    "proven_holder"
                } else {
                    "id_taken"
                };
                return refuse_id_taken(&mut self.fx, id, why);
            }
            let why = match (same_client, join.proven) {
                (true, _) => "same_token",
                (false, true) => "ticket",
                (false, false) => "stale",
            };
            replace_socket(&mut self.fx, holder);
            closed.push(holder.socket);
            self.fx.count(Counter::Takeover, 1);
            self.fx.log(
                LogEvent::new(Level::Info, "takeover")
                    .peer(id)
                    .field("why", why),
            );
        }

        let mut live: Vec<&PeerView<S>> = self
            .live()
            .filter(|p| !closed.contains(&p.socket))
            .collect();
        if let Some((capacity, full)) = self.m.placement.capacity(self.limits) {
            // Stale peers holding seats are retired lazily, only when needed.
            if live.len() >= capacity {
                let (now, limits) = (self.now, self.limits);
                for stale in live.iter().filter(|p| p.is_stale(now, limits)) {
                    self.retire(stale, LeaveCause::Timeout, None);
                    closed.push(stale.socket);
                }
                live.retain(|p| !closed.contains(&p.socket));
            }
            if live.len() >= capacity {
                let refusal = Refusal {
                    frame: frame::render_error(&full),
                    code: CLOSE_POLICY,
                    reason: full,
                    counted: RefuseReason::RoomFull,
                    level: Level::Info,
                    logged: ("room_full", None),
                };
                refuse(&mut self.fx, id, refusal);
                return self.plan_alarm(oldest_seen(live.into_iter()));
            }
        }

        // Welcome: OPEN first, then whatever waited for this id, in order.
        let correspondents = self.inherited(id, &closed);
        self.fx.op(SocketOp::Accept {
            state: PeerState {
                id: join.id.clone(),
                proven: join.proven,
                joined_ms: self.now,
                seen_ms: self.now,
                closing: false,
                holder: join.holder.clone(),
                correspondents,
            },
        });
        self.fx.op(SocketOp::Send {
            to: Recipient::Joiner,
            text: frame::OPEN.to_owned(),
        });
        self.fx.count(Counter::ConnectionAccepted, 1);
        self.fx.log(
            LogEvent::new(Level::Info, "open")
                .peer(id)
                .field("proven", join.proven)
                .field("peers", live.len() + 1),
        );
        // Back within the grace period: no LEAVE for this id.
        if self.rec.leaves.iter().any(|l| l.id == id) {
            self.rec.leaves.retain(|l| l.id != id);
        }
        if self.rec.queue.iter().any(|q| q.dst == id) {
            let (waiting, kept) = std::mem::take(&mut self.rec.queue)
                .into_iter()
                .partition::<Vec<Queued>, _>(|q| q.dst == id);
            self.rec.queue = kept;
            for q in &waiting {
                self.remember(id, &q.src);
            }
            let keys: Vec<String> = waiting.iter().map(Queued::key).collect();
            self.fx.deletes.extend(keys.iter().cloned());
            self.fx.log(
                LogEvent::new(Level::Debug, "deliver_queued")
                    .peer(id)
                    .field("count", keys.len()),
            );
            self.fx.op(SocketOp::Deliver {
                to: Recipient::Joiner,
                keys,
            });
        }
        // The joiner is seen now.
        let oldest = oldest_seen(live.into_iter()).map_or(self.now, |o| o.min(self.now));
        self.plan_alarm(Some(oldest));
    }

    /// Closes a peer for flooding (`why` `None`: already told) or for what
    /// it kept sending ([`judge_drop`]'s verdict, told here with an ERROR
    /// that says why); its LEAVE follows the grace.
    pub(super) fn kick(&mut self, sender: &PeerView<S>, why: Option<KickFor>) {
        let ending = why.map(|why| {
            self.flood.forget(&sender.state.id);
            kick_notice(
                &mut self.fx,
                sender.socket,
                &sender.state.id,
                why,
                self.limits,
            )
        });
        self.retire(sender, LeaveCause::Kicked, ending);
        let others = self.live().filter(|p| p.socket != sender.socket);
        self.plan_alarm(oldest_attached_seen(others));
    }

    /// Closes a live peer for `cause` and schedules its LEAVE.
    pub(super) fn retire(
        &mut self,
        peer: &PeerView<S>,
        cause: LeaveCause,
        ending: Option<(u16, &str)>,
    ) {
        self.keep_for_leave(peer);
        let leave = retire_peer(&mut self.fx, self.limits, peer, cause, ending, self.now);
        self.schedule_leave(leave);
    }

    /// A socket closed or errored. A socket the server already closed
    /// (takeover, timeout, kick, refusal) was accounted for then; a live one
    /// starts its id's grace, unless the id is back on another socket. Like
    /// a frame, it never reads `heartbeat_ms`.
    pub(super) fn closed(&mut self, socket: S) {
        let Some(gone) = self.peers.iter().find(|p| p.socket == socket) else {
            return;
        };
        let others: Vec<&PeerView<S>> = self.live().filter(|p| p.socket != socket).collect();
        if gone.is_live() {
            let id = gone.state.id.as_str();
            self.fx.log(LogEvent::new(Level::Info, "close").peer(id));
            if !others.iter().any(|p| p.state.id == id) {
                self.flood.forget(id);
                self.keep_for_leave(gone);
                self.schedule_leave(PendingLeave {
                    id: id.to_owned(),
                    due_ms: self.now + self.limits.leave_grace_ms,
                    cause: LeaveCause::Closed,
                    proven: gone.state.proven,
                });
            }
        }
        self.plan_alarm(oldest_attached_seen(others.into_iter()));
    }
}
