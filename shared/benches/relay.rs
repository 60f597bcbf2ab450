//! Relay-path benchmark of the core: one 4 KiB OFFER from a to b in a room
//! of four, exactly the work the Durable Object asks of the core per frame
//! (parse, rate check, render, effects). Prints the median time per relayed
//! message over several rounds and the heap allocations per message.
//!
//! Run: `cargo bench -p signaling-core --bench relay`

use signaling_core::flood::PeerFloodGuard;
use signaling_core::machine::{Input, Machine};
use signaling_core::peer::{Limits, PeerView};
use signaling_core::placement::Placement;
use signaling_core::record::Record;
use signaling_core::socket::PeerState;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn main() {
    let cfg = Limits {
        peer_msgs_per_sec: 0, // measure the relay, not the limiter's refusals
        ..Limits::default()
    };
    let room = Machine::new(&cfg, Placement::Room);
    let peers: Vec<PeerView<usize>> = ["a", "b", "c", "d"]
        .iter()
        .enumerate()
        .map(|(i, id)| PeerView {
            socket: i,
            state: PeerState {
                id: (*id).to_owned(),
                proven: false,
                joined_ms: 0,
                seen_ms: 0,
                closing: false,
                holder: None,
                correspondents: Vec::new(),
            },
            heartbeat_ms: None,
        })
        .collect();
    let sdp = "a=candidate:1 1 udp 2122260223 192.0.2.1 54321 typ host\\r\\n".repeat(70);
    let frame = format!(
        r#"{{"type":"OFFER","dst":"b","payload":{{"sdp":{{"type":"offer","sdp":"{}"}},"type":"data","connectionId":"dc_abc","label":"dc_abc","reliable":true,"serialization":"binary"}}}}"#,
        &sdp[..4000]
    );
    let mut record = Record::default();
    let mut flood = PeerFloodGuard::new(0);
    let per_round = 20_000u32;
    let mut rounds = Vec::new();
    let mut allocs_per_msg = 0.0;
    for _ in 0..9 {
        // The host owns each frame's bytes already (the runtime copied
        // them into wasm memory): made before the clock starts.
        let mut frames: Vec<Vec<u8>> = (0..per_round).map(|_| frame.as_bytes().to_vec()).collect();
        let before = ALLOCS.load(Ordering::Relaxed);
        let start = Instant::now();
        for i in 0..per_round {
            let bytes = std::mem::take(&mut frames[i as usize]);
            let input = Input::Frame { from: 0, bytes };
            // `seen_ms` refresh is throttled to once a second; keep time still.
            let fx = room.handle_input(&mut record, &peers, input, &mut flood, u64::from(i % 2));
            std::hint::black_box(fx);
        }
        rounds.push(start.elapsed().as_nanos() as f64 / f64::from(per_round));
        allocs_per_msg = (ALLOCS.load(Ordering::Relaxed) - before) as f64 / f64::from(per_round);
    }
    rounds.sort_by(f64::total_cmp);
    println!(
        "relay of one {}-byte OFFER through the core (room of 4):",
        frame.len()
    );
    println!(
        "  median {:.0} ns/msg (min {:.0}, max {:.0}, 9 rounds of {per_round})",
        rounds[4], rounds[0], rounds[8]
    );
    println!("  allocations: {allocs_per_msg:.1} per message");
    println!("    of which parsing: {}", parse_allocations(&frame));
}

/// Allocations of parsing alone: serde_json keeps a stack for nesting
/// deeper than one level (the payload's `sdp` object), which allocates.
fn parse_allocations(frame: &str) -> u64 {
    let before = ALLOCS.load(Ordering::Relaxed);
    let parsed = signaling_core::frame::parse_client_frame(frame.as_bytes(), 65_536);
    std::hint::black_box(parsed.is_ok());
    ALLOCS.load(Ordering::Relaxed) - before
}
