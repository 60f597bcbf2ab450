#!/usr/bin/env python3
"""Renders target/bench/*.json as one markdown table per scenario: every server side by side, then ours/floor and ours/reference."""
import json, os, sys, glob
out, cores = sys.argv[1], sys.argv[2]
res = {}
names = {"a": "1000 rooms x 4 handshake", "b": "2500 rooms x 4 (10,000 sockets)", "c": "hot room at the per-peer limit", "d": "idle heartbeating rooms",
         "e": "room of 3 relaying 50/s, no flood", "f": "room of 3 relaying 50/s while a 4th member floods 10,000 frames/s",
         "g": "open namespace: 1000 foursomes (4,000 peers, own tokens)", "h": "open namespace: 2000 pairs (4,000 peers, own tokens)",
         "w": "first relay after a wake: 200 rooms x 2 idle 30 s, then one OFFER each"}
for f in glob.glob(os.path.join(out, "*-*.json")):
    label, scen = os.path.basename(f)[:-5].split("-", 1)
    if scen in names:
        res.setdefault(scen, {})[label] = json.load(open(f))
rows = [("opened", "sockets opened"), ("refused", "refused"), ("lost", "lost"), ("duplicated", "duplicated"), ("misrouted", "misrouted"),
        ("connect_ms.p50", "connect->OPEN p50 ms"), ("connect_ms.p99", "connect->OPEN p99 ms"),
        ("relay_ms.p50", "relay p50 ms"), ("relay_ms.p90", "relay p90 ms"), ("relay_ms.p99", "relay p99 ms"), ("relay_ms.max", "relay max ms"),
        ("steady_relay_ms.p50", "steady-phase relay p50 ms"), ("steady_relay_ms.p99", "steady-phase relay p99 ms"), ("steady_relay_ms.max", "steady-phase relay max ms"),
        ("flood.frames_sent", "flood frames sent"), ("flood.error", "flooder's ERROR"), ("flood.close_code", "flooder closed with"), ("flood.closed_after_ms", "flooder closed after ms"),
        ("messages_per_sec", "messages/s"), ("server_cpu_secs", "server CPU s"), ("server_peak_rss_kib", "server peak RSS KiB"),
        ("wake_relay_ms.count", "relays after a wake"), ("wake_relay_ms.p50", "wake-to-delivery p50 ms"), ("wake_relay_ms.p99", "wake-to-delivery p99 ms"), ("wake_relay_ms.max", "wake-to-delivery max ms"),
        ("server_fds.sockets", "server descriptors: sockets"), ("server_fds.files", "server descriptors: files"), ("server_fds.other", "server descriptors: other"),
        ("server_rss_per_peer_kib", "RSS per peer KiB"), ("client_cpu_share", "client CPU share"), ("wakes_per_room_hour", "room wakes per room-hour")]
def machine():
    model = ""
    try:
        model = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        mem = int(next(l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal"))) / 1048576
    except (OSError, StopIteration):
        mem = 0
    return f"{cores} cores ({model or 'unknown CPU'}), {mem:.0f} GiB, Linux, loopback"
def get(d, k):
    for p in k.split("."):
        d = d.get(p) if isinstance(d, dict) else None
    return d
SERVERS = ["ours", "grouped", "rooms", "floor", "floorhops", "floorrpc", "floorfetch", "reference", "dev"]
# The ratio columns, each where both servers ran: ours against each floor and
# the reference; grouped against rooms mode on the same traffic and against
# ours with one object per id.
RATIOS = [("ours", "floor"), ("ours", "floorhops"), ("ours", "floorrpc"), ("ours", "floorfetch"), ("ours", "reference"),
          ("grouped", "rooms"), ("grouped", "ours")]
lines = [f"Machine: {machine()}; loadgen, client and servers share those cores; connections opened at the same rate for all. "
         "**ours** = both Workers on bare `workerd serve` (the production runtime), **floor** = `bench/floor/relay.js`, a minimal JS relay "
         "Durable Object on the same workerd, **grouped** = ours in the open namespace with `OPEN_GROUP_SEPARATOR=-` and ids that share their room's prefix, **floorhops** = that floor behind two pass-through Workers (the hops every socket of ours crosses: router, rooms Worker), **floorrpc** / **floorfetch** = `bench/floor/open.js`, a minimal JS relay with one Durable Object per peer id, the destination's object called by JS RPC / by `fetch` (open-namespace scenarios; there **ours** is `NAMESPACE=open` with one object per id and **rooms** is ours in rooms mode on the same traffic), **reference** = peer@1.0.2 on Node 22, **dev** = both Workers under `wrangler dev` (what `make dev` serves). "
         "A `-` is a figure that server has no counter for, or a scenario it did not run.", ""]
fmt = lambda v: "-" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v))
def quotient(o, r):
    return o / r if isinstance(o, (int, float)) and isinstance(r, (int, float)) and r else None
def ratio(o, r):
    q = quotient(o, r)
    return "-" if q is None else f"{q:.2f}"
for s in sorted(res):
    present = [n for n in SERVERS if n in res[s]]
    pairs = [(a, b) for a, b in RATIOS if a in present and b in present]
    lines.append(f"### ({s}) {names[s]}")
    columns = present + [f"{a}/{b}" for a, b in pairs]
    lines.append("| figure | " + " | ".join(columns) + " |")
    lines.append("| --- |" + " --- |" * len(columns))
    failed = {n: res[s][n].get("failed") for n in present}
    if any(failed.values()):
        lines.append("| result | " + " | ".join(f"**failed**: {failed[n]}" if failed[n] else "ok" for n in present)
                     + " |" + " - |" * (len(columns) - len(present)))
    for k, label in rows:
        # A failed run's figures are not results: shown as `-`, but for how
        # many sockets it held before it failed.
        kept = k in ("opened", "refused")
        vals = {n: None if failed[n] and not kept else get(res[s][n], k) for n in present}
        if all(v is None for v in vals.values()):
            continue
        cells = [fmt(vals[n]) for n in present] + [ratio(vals[a], vals[b]) for a, b in pairs]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("")
# The headline comparison in alternated rounds (scripts/bench.sh says why):
# each round's ratios, then their median, the figure to quote.
rounds = {}
ended = {}  # round -> server -> when its run ended (its file's time)
for f in glob.glob(os.path.join(out, "rounds", "*-a*.json")):
    label, tag = os.path.basename(f)[:-5].rsplit("-", 1)
    rounds.setdefault(int(tag[1:]), {})[label] = json.load(open(f))
    ended.setdefault(int(tag[1:]), {})[label] = os.path.getmtime(f)
if rounds:
    import statistics
    figures = [("server_cpu_secs", "CPU s"), ("relay_ms.p99", "relay p99 ms"), ("connect_ms.p99", "OPEN p99 ms")]
    lines.append("### (a) again: ours against floorhops in alternated rounds")
    lines.append("Each round runs both servers back to back, each first in turn. "
                 "The median ratios are the comparison to quote; the single runs above are minutes apart.")
    lines.append("")
    lines.append("| round | first | " + " | ".join(f"ours {t} | floorhops {t} | ratio" for _, t in figures) + " | lost, duplicated, misrouted |")
    lines.append("| --- | --- |" + " --- | --- | --- |" * len(figures) + " --- |")
    medians = {k: [] for k, _ in figures}
    for r in sorted(rounds):
        pair = rounds[r]
        ours, hops = pair.get("ours"), pair.get("floorhops")
        failed = [f"{n}: {pair[n]['failed']}" for n in ("ours", "floorhops") if n in pair and pair[n].get("failed")]
        if not ours or not hops or failed:
            lines.append(f"| {r} | **failed**: {'; '.join(failed) or 'a server did not run'} |" + " - | - | - |" * len(figures) + " - |")
            continue
        cells = []
        for k, _ in figures:
            o, h = get(ours, k), get(hops, k)
            cells += [fmt(o), fmt(h), ratio(o, h)]
            if quotient(o, h) is not None:
                medians[k].append(quotient(o, h))
        bad = " / ".join(f"{get(ours, k) or 0}+{get(hops, k) or 0}" for k in ("lost", "duplicated", "misrouted"))
        lines.append(f"| {r} | {min(ended[r], key=ended[r].get)} | " + " | ".join(cells) + f" | {bad} |")
    cells = ["**median**", ""]
    for k, _ in figures:
        cells += ["", "", f"**{statistics.median(medians[k]):.2f}**" if medians[k] else "-"]
    lines.append("| " + " | ".join(cells + [""]) + " |")
    lines.append("")
import importlib.util
_spec = importlib.util.spec_from_file_location("bench_cost", os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench-cost.py"))
bench_cost = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_cost)
lines.append(bench_cost.model(out))
text = "\n".join(lines)
print(text)
open(os.path.join(out, "table.md"), "w").write(text)
# docs/benchmarks.md: the method, this run's tables (generated, so they
# cannot drift from what was measured) and the hand-written reading of them.
docs = sys.argv[3] if len(sys.argv) > 3 else None
if docs and not os.environ.get("BENCH_QUICK") == "1":
    import datetime, subprocess
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    commit = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    # A table merged from more than one run says where each part came from
    # (ORIGIN.md beside the results) instead of naming one run.
    origin_path = os.path.join(out, "ORIGIN.md")
    origin = open(origin_path).read().strip() if os.path.exists(origin_path) else ""
    reading_path = os.path.join(root, "docs", "benchmarks-reading.md")
    reading = open(reading_path).read() if os.path.exists(reading_path) else ""
    head = f"""# Benchmarks

Written by `make bench` (`scripts/bench.sh`, `scripts/bench-table.py`); do
not edit the tables by hand. The load generator (`tools/src/bin/loadgen.rs`)
opens R rooms x P peers speaking the PeerJS wire protocol (HEARTBEAT every
5 s; per pair an OFFER and an ANSWER with ~4 KiB SDP and 10 CANDIDATEs each
way; every message carries a sequence number and a send time and is checked
for `src`, order and exactly-once delivery) against each server on loopback
in turn, a fresh server per scenario. The core alone (`cargo bench -p
signaling-core --bench relay`) is measured separately.

{origin or f"Run of {datetime.date.today().isoformat()} at commit `{commit}`."}

"""
    open(docs, "w").write(head + text + "\n" + reading)
json.dump({**res, "a_rounds": rounds}, open(os.path.join(out, "results.json"), "w"), indent=2)
