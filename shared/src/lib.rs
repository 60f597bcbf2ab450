//! `signaling-core`: everything the PeerJS signaling server decides, with no I/O.
//!
//! The two Workers are thin adapters around this crate. They turn Cloudflare
//! events into calls on the types here (each call takes `now` in milliseconds
//! since the Unix epoch; ids and random bytes come in as arguments) and carry
//! out the returned effects. That keeps every protocol rule testable on the
//! host with `cargo test`.
//!
//! Map of the crate:
//! - [`api`]: which router endpoint a path is for.
//! - [`ids`]: what a peer id and a room id may look like.
//! - [`frame`]: parsing client frames and rendering server frames (PeerJS wire format).
//! - [`machine`]: the one state machine of every object that holds sockets
//!   (join, relay, offline queue, leave, liveness), in rooms and homes alike;
//!   its [`placement`] says which ids live in an object and what it owes them.
//! - [`peer`]: the rules of one peer (limits, takeover, the front of every frame, notices).
//! - [`record`]: an object's durable record and the wrapper that knows it changed.
//! - [`timers`]: every deadline of an object in one table; the earliest is the alarm.
//! - [`step`]: what one event changed, and the one interpreter that carries it out.
//! - [`moderation`]: what the admin API does to a live room (inspect, remove, close);
//!   [`answer`]: what it found.
//! - [`delivery`]: frames between objects of the open namespace, and their body.
//! - [`outbox`]: a home's parcels waiting for delivery to other homes, bounded in count and bytes.
//! - [`flood`]: per-peer and per-IP rate limits on top of `governor`, driven by an external clock.
//! - [`query`]: the WebSocket query string of the stock client.
//! - [`ticket`]: signed room tickets (JWT) and dev-mode room ids.
//! - [`cors`]: the origin allow-list and CORS headers.
//! - [`config`]: every setting, its default and its validation.
//! - [`contract`]: the internal router -> rooms request contract.
//! - [`log`]: structured JSON log lines.
//! - [`double`]: an in-memory Durable Object double for tests and fuzzing.
//! - [`metrics`]: the counters the core reports.

pub mod answer;
pub mod api;
pub mod config;
pub mod contract;
pub mod cors;
pub mod delivery;
pub mod double;
pub mod flat_map;
pub mod flood;
pub mod frame;
pub mod ice;
pub mod ids;
pub mod json;
pub mod log;
pub mod machine;
pub mod metrics;
pub mod moderation;
pub mod order;
pub mod outbox;
pub mod peer;
pub mod placement;
pub mod query;
pub mod record;
pub mod secret;
pub mod settings;
pub mod socket;
pub mod step;
pub mod target;
pub mod ticket;
pub mod timers;
