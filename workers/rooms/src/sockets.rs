//! The room's hibernatable sockets: how `GameRoom` reads them (a cache for
//! the relay path, the runtime's list for the membership rules) and the
//! runtime's side of the core's socket interpreter ([`RoomSockets`]).

use crate::runtime::RawState;
use signaling_core::peer::PeerView;
use signaling_core::socket::{PeerState, Recipient};
use signaling_core::step::Sockets;
use std::cell::{RefCell, RefMut};
use std::rc::Rc;
use worker::{Error, Result, State, WebSocket};

/// An event's list of the room's sockets (shared with the cache).
pub type Listed = Rc<Vec<WebSocket>>;
/// The core's view of them, same order (shared with the cache unless it
/// carries heartbeat timestamps).
pub type Views = Rc<Vec<PeerView<usize>>>;

/// How a handler reads the room's sockets.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// The relay path: the cache, no heartbeat timestamps (frames and
    /// reports judge no staleness).
    Cached,
    /// A close: the runtime's list afresh, no timestamps.
    Fresh,
    /// The membership rules that judge staleness (join, alarm, roster): the
    /// runtime's list afresh, with the auto-response timestamps.
    FreshWithHeartbeats,
}

/// The sockets and the core's view of their attachments (no heartbeat
/// timestamps), as this object last read or wrote them. Shared, not copied,
/// with each event that reads the cache: a relay clones no socket handle
/// (each clone takes a slot in wasm-bindgen's table of JS values) and no
/// attachment.
struct Cached {
    sockets: Rc<Vec<WebSocket>>,
    views: Rc<Vec<PeerView<usize>>>,
}

/// The room's sockets as this object knows them.
///
/// Reading the runtime's list costs a few JS calls and a deserialization per
/// socket, on every frame; but it only changes when this object accepts a
/// socket, replaces an attachment or sees a close, so the cache is updated
/// or dropped right there (in [`RoomSockets`] and [`SocketList::forget`]).
/// Joins, closes, alarms and roster reads always start from the runtime's
/// list (they are rare, and the runtime may still list a just-closed socket
/// for a moment). It dies with the object at eviction, like everything in
/// memory. Heartbeat timestamps are never cached: the runtime moves them
/// without waking the object.
#[derive(Default)]
pub struct SocketList {
    cache: RefCell<Option<Cached>>,
    /// Sockets whose close this object handled but the runtime may still
    /// list for a moment: never treated as peers again.
    closed: RefCell<Vec<WebSocket>>,
}

impl SocketList {
    /// The room's sockets and the core's view of them (same order).
    pub fn peers(&self, state: &State, raw: &RawState, read: Read) -> (Listed, Views) {
        let cache = self.cached(state, read);
        let views = if read == Read::FreshWithHeartbeats {
            let mut views = Vec::clone(&cache.views);
            for (view, ws) in views.iter_mut().zip(cache.sockets.iter()) {
                view.heartbeat_ms = raw.heartbeat_ms(ws);
            }
            Rc::new(views)
        } else {
            Rc::clone(&cache.views)
        };
        (Rc::clone(&cache.sockets), views)
    }

    /// Where the cache lists `ws`, and `judge` applied to its attachment as
    /// the cache holds it (`None` if the cache does not list `ws`); no copy
    /// is made.
    pub fn with_attachment<R>(
        &self,
        state: &State,
        ws: &WebSocket,
        judge: impl FnOnce(&PeerState) -> R,
    ) -> Option<(usize, R)> {
        let cache = self.cached(state, Read::Cached);
        let found = cache.sockets.iter().position(|s| s == ws);
        found.map(|i| (i, judge(&cache.views[i].state)))
    }

    /// Live (not closing) peers, from the cache.
    pub fn live_count(&self, state: &State) -> usize {
        let cache = self.cached(state, Read::Cached);
        cache.views.iter().filter(|v| !v.state.closing).count()
    }

    /// A closed socket leaves the cache and is never read as a peer again.
    pub fn forget(&self, ws: &WebSocket) {
        self.closed.borrow_mut().push(ws.clone());
        self.cache.replace(None);
    }

    /// The cache, read afresh from the runtime unless `read` allows the
    /// cached copy.
    fn cached(&self, state: &State, read: Read) -> RefMut<'_, Cached> {
        let mut cache = self.cache.borrow_mut();
        if read != Read::Cached {
            *cache = None;
        }
        RefMut::map(cache, |cache| {
            cache.get_or_insert_with(|| {
                let (mut sockets, mut views) = (Vec::new(), Vec::new());
                let listed = state.get_websockets();
                // Forget closed sockets the runtime no longer lists (bounded list).
                self.closed.borrow_mut().retain(|c| listed.contains(c));
                let closed = self.closed.borrow();
                for ws in listed {
                    if closed.contains(&ws) {
                        continue;
                    }
                    if let Ok(Some(state)) = crate::stored::attachment::<PeerState>(&ws) {
                        views.push(PeerView {
                            socket: sockets.len(),
                            state,
                            heartbeat_ms: None,
                        });
                        sockets.push(ws);
                    }
                }
                Cached {
                    sockets: Rc::new(sockets),
                    views: Rc::new(views),
                }
            })
        })
    }
}

/// The room's hibernatable sockets as the core's interpreter sees them: one
/// handler's list (`sockets`, indexed as the core's view) and the joining
/// socket, if any. Every attachment written here keeps the cache in step.
pub struct RoomSockets<'a> {
    pub state: &'a State,
    pub list: &'a SocketList,
    pub sockets: &'a [WebSocket],
    pub joiner: Option<&'a WebSocket>,
}

impl RoomSockets<'_> {
    fn target(&self, to: Recipient<usize>) -> Option<&WebSocket> {
        match to {
            Recipient::Peer(i) => self.sockets.get(i),
            Recipient::Joiner => self.joiner,
        }
    }
}

impl Sockets<usize> for RoomSockets<'_> {
    type Error = Error;

    fn accept(&mut self, state: &PeerState) -> Result<()> {
        if let Some(ws) = self.joiner {
            self.state.accept_websocket_with_tags(ws, &[&state.id]);
            crate::stored::attach(ws, state)?;
            self.list.cache.replace(None);
        }
        Ok(())
    }

    fn refuse(&mut self, frame: &str, code: u16, reason: &str) -> Result<()> {
        if let Some(ws) = self.joiner {
            // A plain (not hibernatable) accept: the socket is never a peer
            // and lives only for this request.
            ws.accept()?;
            let _ = ws.send_with_str(frame);
            let _ = ws.close(Some(code), Some(reason));
        }
        Ok(())
    }

    fn send(&mut self, to: Recipient<usize>, text: &str) {
        if let Some(ws) = self.target(to) {
            let _ = ws.send_with_str(text);
        }
    }

    fn save_state(&mut self, socket: usize, state: &PeerState) -> Result<()> {
        let Some(ws) = self.sockets.get(socket) else {
            return Ok(());
        };
        crate::stored::attach(ws, state)?;
        // Another event may have rebuilt the cache meanwhile: update it only
        // if the index still names this socket.
        let mut cache = self.list.cache.borrow_mut();
        let in_step = match cache.as_mut() {
            Some(c) if c.sockets.get(socket) == Some(ws) => {
                Rc::make_mut(&mut c.views)[socket].state = state.clone();
                true
            }
            Some(_) => false,
            None => true,
        };
        if !in_step {
            *cache = None;
        }
        Ok(())
    }

    fn close(&mut self, socket: usize, code: u16, reason: &str) {
        if let Some(ws) = self.sockets.get(socket) {
            let _ = ws.close(Some(code), Some(reason));
        }
    }
}
