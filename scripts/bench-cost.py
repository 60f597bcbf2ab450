#!/usr/bin/env python3
"""What a room costs to run, on paper, from a benchmark run's measured counts.

Imported by bench-table.py (and runnable alone: bench-cost.py target/bench).
Inputs measured by `make bench`: from scenario (a) on bare workerd, the
messages one room's handshake relays and the server CPU per room; from (d),
the wakes of an idle heartbeating room per hour; from the reference's (a),
its CPU and memory per peer. Everything else is a count the code fixes
(one upgrade per socket, the writes a join, a sweep and a leave make), named
in the table so a reader can check it. Prices: the published Workers Paid
rates below; re-check them before quoting a figure.
"""
import json, os, sys

PRICES_READ = "2026-12-06"
PRICES = {
    "workers_request": 0.30 / 1e6,  # Workers Paid, beyond 10M included a month
    "do_request": 0.15 / 1e6,  # beyond 1M included; WebSocket messages in count 1/20
    "do_gb_s": 12.50 / 1e6,  # beyond 400,000 GB-s included; 128 MB per active object
    "row_written": 1.00 / 1e6,  # SQLite-backed storage, beyond 50M included
    "row_read": 0.001 / 1e6,  # beyond 25 billion included
}
PEERS, HOUR_S, HEARTBEAT_S, OBJECT_GB = 4, 3600, 5, 0.125
# Counts fixed by the code (per room), not measured:
UPGRADES = PEERS  # one router request and one Durable Object request per socket
ROWS_PER_JOIN_BURST = 0  # a join into a room with nothing stored writes nothing
ROWS_PER_LEAVER = 2  # the record (its pending LEAVE) and the alarm, per socket that closes
ROWS_PER_EMPTYING = 1  # the record deleted once the last LEAVE is out
REPORTS_PER_MEMBERSHIP_BURST = 1  # membership reports coalesce (500 ms)
ROWS_PER_GAUGE_CHANGE = 1  # the shard writes a room's gauge only when its peer count changes
# The stats shards: one alarm run per tick at most (metrics::SWEEP_TICK_MS, 5 s)
# calls the due sweeps; counters are written at most every 10 s (stats.rs).
# Their rows and alarm runs are shared by the rooms of a shard: priced here
# for 10,000 rooms on the default 8 shards.
SHARD_ROOMS = 10_000 / 8
SHARD_ALARMS_PER_HOUR = HOUR_S / 5
SHARD_COUNTER_WRITES_PER_HOUR = HOUR_S / 10
# The two readings of heartbeats answered by the runtime's auto-response.
HEARTBEAT_READINGS = ("billed as messages in (conservative)", "not billed")


def load(out, name):
    path = os.path.join(out, name + ".json")
    return json.load(open(path)) if os.path.exists(path) else None


def room_hour(active, handshake_msgs, cpu_s_per_room, wakes, heartbeats_billed=True):
    """Billable units of one room-hour of 4 players (active) or of 4 idle heartbeating players."""
    heartbeats = PEERS * HOUR_S / HEARTBEAT_S if heartbeats_billed else 0
    msgs_in = heartbeats + (handshake_msgs if active else 0)
    reports = 2 * REPORTS_PER_MEMBERSHIP_BURST if active else 0
    shard_share = (SHARD_ALARMS_PER_HOUR + SHARD_COUNTER_WRITES_PER_HOUR) / SHARD_ROOMS
    units = {
        "Workers requests (upgrades)": UPGRADES if active else 0,
        "DO requests: connects": UPGRADES if active else 0,
        "DO requests: WebSocket messages in / 20": msgs_in / 20,
        "DO requests: wakes (sweeps called by the shard)": wakes,
        "DO requests: stats reports": reports,
        "DO requests: shard alarm runs (share)": SHARD_ALARMS_PER_HOUR / SHARD_ROOMS,
        "rows written: room": (ROWS_PER_JOIN_BURST + PEERS * ROWS_PER_LEAVER + ROWS_PER_EMPTYING)
        if active
        else 0,
        "rows written: shard (gauges, and a share of its alarm and counters)": shard_share
        + (2 * ROWS_PER_GAUGE_CHANGE if active else 0),
        "rows read": (1 if active else 0) + wakes,
        # Active (billed) time: handler time, taken as the CPU it measured
        # (a lower bound: storage waits add wall time); a hibernatable object
        # is not billed while it waits.
        "DO GB-s": (cpu_s_per_room if active else 0) * OBJECT_GB,
    }
    rows = sum(v for k, v in units.items() if k.startswith("rows written"))
    cost = (
        units["Workers requests (upgrades)"] * PRICES["workers_request"]
        + sum(v for k, v in units.items() if k.startswith("DO requests")) * PRICES["do_request"]
        + rows * PRICES["row_written"]
        + units["rows read"] * PRICES["row_read"]
        + units["DO GB-s"] * PRICES["do_gb_s"]
    )
    return units, cost


def model(out):
    ours_a, ours_d, ref_a = load(out, "ours-a"), load(out, "ours-d"), load(out, "reference-a")
    if not (ours_a and ours_d and ours_a.get("rooms")):
        return ""
    rooms = ours_a["rooms"]
    handshake_msgs = ours_a["messages_sent"] / rooms
    cpu_per_room = ours_a["server_cpu_secs"] / rooms
    wakes = ours_d.get("wakes_per_room_hour") or 0.0
    active, active_cost = room_hour(True, handshake_msgs, cpu_per_room, wakes)
    idle, idle_cost = room_hour(False, handshake_msgs, cpu_per_room, wakes)
    _, idle_unbilled = room_hour(False, handshake_msgs, cpu_per_room, wakes, False)
    idle_rows = sum(v for k, v in idle.items() if k.startswith("rows written"))
    month_rooms = 10_000 * 730
    lines = [
        "## What it costs to run (a model from this run's counts)",
        "",
        f"Generated by `scripts/bench-cost.py`. Measured inputs: one room's handshake relays "
        f"{handshake_msgs:.0f} messages and costs {cpu_per_room * 1000:.1f} ms of server CPU "
        f"(scenario a, bare workerd); an idle heartbeating room wakes {wakes:.1f} times an hour "
        f"(scenario d). Assumed, from the code: one Workers request and one Durable Object request "
        f"per socket; membership reports coalesced into one per burst; a sweep (called by the "
        f"room's stats shard) writes nothing, a join into an empty room nothing, a leaver "
        f"{ROWS_PER_LEAVER} rows; the shard writes a gauge only when its peer count changes, its "
        f"counters at most every 10 s and its alarm at most every 5 s, shared by its rooms "
        f"(priced for 10,000 rooms on 8 shards); heartbeats (every {HEARTBEAT_S} s) billed "
        f"as incoming WebSocket messages although the runtime answers them without waking the "
        f"room (the conservative reading; the other is below); billed active time = measured "
        f"CPU (a lower bound). "
        f"The handshake is the only signaling counted in an active hour (a game that renegotiates "
        f"adds 1/20 request per message).",
        "",
        f"Prices (Workers Paid, USD, read {PRICES_READ}; re-check before quoting): Workers requests "
        f"$0.30/M; Durable Object requests $0.15/M, incoming WebSocket messages billed 20:1; "
        f"duration $12.50/M GB-s at 128 MB per active object; SQLite rows written $1.00/M, read "
        f"$0.001/M; the plan's $5 a month and its included amounts are left out (they only lower "
        f"small bills).",
        "",
        "| billable unit | active 4-player room-hour | idle 4-player room-hour |",
        "| --- | --- | --- |",
    ]
    for key in active:
        lines.append(f"| {key} | {active[key]:.2f} | {idle[key]:.2f} |")
    lines += [
        f"| **USD per room-hour** | **{active_cost:.7f}** | **{idle_cost:.7f}** |",
        "",
        f"An idle connected room-hour writes {idle_rows:.2f} rows. Heartbeats answered by the "
        f"runtime's auto-response: Cloudflare's pricing page "
        f"(https://developers.cloudflare.com/durable-objects/platform/pricing/, footnote on "
        f"`setWebSocketAutoResponse`, read {PRICES_READ}) says they incur no additional "
        f"wall-clock time and are not charged for it; whether they count as requests is not "
        f"stated. Read as {HEARTBEAT_READINGS[0]}: **${idle_cost:.7f}** per idle room-hour; read "
        f"as {HEARTBEAT_READINGS[1]}: **${idle_unbilled:.7f}**.",
        "",
        f"10,000 rooms active around the clock for a month (7.3 M room-hours): about "
        f"**${active_cost * month_rooms:,.0f}** a month (idle but connected: "
        f"${idle_cost * month_rooms:,.0f}). The heartbeats alone are "
        f"{PEERS * HOUR_S / HEARTBEAT_S / 20:.0f} billed requests per room-hour, "
        f"${PEERS * HOUR_S / HEARTBEAT_S / 20 * PRICES['do_request'] * month_rooms:,.0f} of it.",
    ]
    if ref_a and ref_a.get("opened"):
        peers = 10_000 * PEERS
        rss_gib = ref_a["server_rss_per_peer_kib"] * peers / 1048576
        cpu_share = ref_a["server_cpu_secs"] / ref_a["rooms"] / HOUR_S  # of a core per room, handshake only
        lines += [
            "",
            f"The same load on `peer@1.0.2` (one Node process is one core): its measured "
            f"{ref_a['server_rss_per_peer_kib']:.1f} KiB per peer makes {peers:,} peers about "
            f"{rss_gib:.1f} GiB; the handshakes take {cpu_share * 10_000 * 100:.2f}% of one core "
            f"per hour, and 10,000 rooms' heartbeats are {peers / HEARTBEAT_S:,.0f} messages a second "
            f"(this run offered it {ref_a['messages_per_sec']:,.0f}/s, so whether one process keeps up "
            f"is not measured here). A few small VMs, then, and the operator runs them; Cloudflare "
            f"adds the edge, TLS, failover and no server to run, and no single process is every "
            f"room's failure domain.",
        ]
    rows = sum(v for k, v in active.items() if k.startswith("rows written"))
    lines += [
        "",
        f"Rows written are {rows * PRICES['row_written'] / active_cost:.0%} of an active "
        f"room-hour's cost (its leavers' pending LEAVEs); an idle room's sweeps write nothing, "
        f"so its hour is the heartbeats (if billed) and the sweep calls.",
    ]
    return "\n".join(lines) + "\n" + open_namespace(out)


# Open namespace, per relayed message (counts fixed by the code; the host
# test `open_rules::what_a_relay_and_a_frame_to_nobody_cost_in_deliveries_and_rows`
# checks them on the double):
MESSAGE_IN = 1 / 20  # the frame arriving on the sender's socket
DELIVERY = 1  # ungrouped: one call of the destination home's `deliver` (JS RPC), a DO request
ROWS_PER_NEW_PAIR = 0  # each side's correspondent (who gets its LEAVE) is in its socket's attachment


def open_namespace(out):
    """Billed Durable Object requests per relay, ungrouped and grouped, priced."""
    ours_g, grouped_g = load(out, "ours-g"), load(out, "grouped-g")
    if not (ours_g and grouped_g):
        return ""
    ungrouped_req, grouped_req = MESSAGE_IN + DELIVERY, MESSAGE_IN
    per_million = lambda req: req * 1e6 * PRICES["do_request"]
    return "\n".join([
        "",
        "### Open namespace: what a relay costs",
        "",
        f"Per relayed message: with one object per id, the frame arrives on its sender's socket "
        f"({MESSAGE_IN:.2f} of a request) and is delivered by one call of the destination home's "
        f"`deliver` method (one Durable Object request); grouped (`OPEN_GROUP_SEPARATOR`), a frame "
        f"between ids of one group stays in its object. A relay between live ids writes "
        f"{ROWS_PER_NEW_PAIR} rows (each side's correspondents, who get its LEAVE, are kept in "
        f"its socket's attachment); a queued frame writes its record, its text and its EXPIRE "
        f"alarm, and deletes the first two when delivered or expired.",
        "",
        "| | billed DO requests per relay | USD per million relays |",
        "| --- | --- | --- |",
        f"| ungrouped (one object per id) | {ungrouped_req:.2f} | {per_million(ungrouped_req):.4f} |",
        f"| grouped, within a group | {grouped_req:.2f} | {per_million(grouped_req):.4f} |",
        f"| rooms mode (for comparison) | {MESSAGE_IN:.2f} | {per_million(MESSAGE_IN):.4f} |",
        "",
        f"So an ungrouped relay costs {ungrouped_req / grouped_req:.0f} times a grouped one. In this "
        f"run scenario (g) relayed {ours_g['messages_sent']:,} messages: "
        f"${per_million(ungrouped_req) * ours_g['messages_sent'] / 1e6:.4f} ungrouped, "
        f"${per_million(grouped_req) * grouped_g['messages_sent'] / 1e6:.4f} grouped.",
    ]) + "\n"


if __name__ == "__main__":
    print(model(sys.argv[1] if len(sys.argv) > 1 else "target/bench"))
