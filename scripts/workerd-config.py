#!/usr/bin/env python3
"""Writes a `workerd serve` configuration for both Workers from the wrangler files.

Bare workerd is the open-source runtime Cloudflare runs in production,
without what `wrangler dev` adds around it (local observability, its proxy,
miniflare's wrappers). The benchmark serves our Workers there, so this file
is the one place that turns wrangler's view of a deployment into workerd's:

- the bundles worker-build wrote (`main` and the modules beside it),
- `compatibility_date` and `compatibility_flags`,
- the router's service binding to the rooms Worker,
- every Durable Object namespace (SQLite-backed when a migration says so),
  stored on local disk under OUT/storage as production stores it on disk,
- the vars of the chosen environment, then `--var NAME=VALUE` overrides.

The router's `[assets]` binding has no bare-workerd equivalent; the demo is
off (`DEMO=false`) so nothing reads it.

Usage: workerd-config.py OUT PORT [--env NAME] [--var NAME=VALUE]... [--v8-flag FLAG]...
(`--v8-flag --perf-basic-prof` lets `perf` name JavaScript and wasm frames.)
Then: workerd serve OUT/config.capnp
"""
import argparse, json, os, shutil, sys, tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROUTER, ROOMS = "wrangler.router.toml", "wrangler.rooms.toml"


def load(name, env):
    with open(os.path.join(ROOT, name), "rb") as f:
        top = tomllib.load(f)
    scoped = top.get("env", {}).get(env, {}) if env else {}
    # wrangler: vars, bindings and services are not inherited by an env.
    pick = lambda key, default: scoped.get(key, default) if env else top.get(key, default)
    return {
        "name": top["name"] + (f"-{env}" if env else ""),
        "main": top["main"],
        "date": top["compatibility_date"],
        "flags": top.get("compatibility_flags", []),
        "vars": dict(pick("vars", {})),
        "durable_objects": pick("durable_objects", {}).get("bindings", []),
        "services": pick("services", []),
        "sqlite": {c for m in top.get("migrations", []) for c in m.get("new_sqlite_classes", [])},
    }


def capnp(value):
    return json.dumps(value)  # a JSON string is a valid capnp text literal


def modules(worker, out, label):
    """Copies the bundle into OUT/label and lists its modules."""
    build = os.path.dirname(os.path.join(ROOT, worker["main"]))
    dest = os.path.join(out, label)
    os.makedirs(dest, exist_ok=True)
    mods = []
    main = os.path.basename(worker["main"])
    for entry in sorted(os.listdir(build)):
        src = os.path.join(build, entry)
        if not os.path.isfile(src):
            continue
        if entry.endswith(".wasm"):
            kind = "wasm"
        elif entry.endswith((".js", ".mjs")):
            kind = "esModule"
        else:
            continue
        shutil.copyfile(src, os.path.join(dest, entry))
        mods.append((entry, kind))
    mods.sort(key=lambda m: m[0] != main)  # the main module comes first
    if not mods or mods[0][0] != main:
        sys.exit(f"{worker['main']} not found: build the Worker first")
    return ", ".join(f"(name = {capnp(n)}, {k} = embed {capnp(label + '/' + n)})" for n, k in mods)


def worker_block(const, worker, out, label, bindings, extra=""):
    flags = ", ".join(capnp(f) for f in worker["flags"])
    binds = ",\n    ".join(bindings)
    return f"""const {const} :Workerd.Worker = (
  modules = [{modules(worker, out, label)}],
  compatibilityDate = {capnp(worker["date"])},
  compatibilityFlags = [{flags}],
  bindings = [
    {binds}
  ],{extra}
);
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("port", type=int)
    ap.add_argument("--env", default="")
    ap.add_argument("--var", action="append", default=[], help="NAME=VALUE, both Workers")
    ap.add_argument("--v8-flag", action="append", default=[], help="a V8 flag, for profiling")
    a = ap.parse_args()
    overrides = dict(v.split("=", 1) for v in a.var)
    router, rooms = load(ROUTER, a.env), load(ROOMS, a.env)
    os.makedirs(os.path.join(a.out, "storage"), exist_ok=True)

    def text_bindings(worker):
        merged = {**worker["vars"], **overrides}
        return [f"(name = {capnp(k)}, text = {capnp(str(v))})" for k, v in sorted(merged.items())]

    router_binds = text_bindings(router)
    for svc in router["services"]:
        if svc["service"] != rooms["name"]:
            sys.exit(f"router binding {svc['binding']} names {svc['service']}, not {rooms['name']}")
        router_binds.append(f"(name = {capnp(svc['binding'])}, service = \"rooms\")")
    rooms_binds = text_bindings(rooms) + [
        f"(name = {capnp(d['name'])}, durableObjectNamespace = {capnp(d['class_name'])})"
        for d in rooms["durable_objects"]
    ]
    namespaces = ", ".join(
        f"(className = {capnp(c)}, uniqueKey = {capnp(rooms['name'] + '-' + c)}, enableSql = {str(c in rooms['sqlite']).lower()})"
        for c in sorted({d["class_name"] for d in rooms["durable_objects"]})
    )
    storage = f"""
  durableObjectNamespaces = [{namespaces}],
  durableObjectStorage = (localDisk = "do-storage"),"""
    text = f"""# Generated by scripts/workerd-config.py from {ROUTER} and {ROOMS}
# (env {a.env or "(top level)"}); do not edit.
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "router", worker = .routerWorker),
    (name = "rooms", worker = .roomsWorker),
    (name = "do-storage", disk = (path = {capnp(os.path.abspath(os.path.join(a.out, "storage")))}, writable = true)),
  ],
  sockets = [(name = "http", address = "127.0.0.1:{a.port}", http = (), service = "router")],
  v8Flags = [{", ".join(capnp(f) for f in a.v8_flag)}],
);

{worker_block("routerWorker", router, a.out, "router", router_binds)}
{worker_block("roomsWorker", rooms, a.out, "rooms", rooms_binds, storage)}"""
    with open(os.path.join(a.out, "config.capnp"), "w") as f:
        f.write(text)
    print(os.path.join(a.out, "config.capnp"))


if __name__ == "__main__":
    main()
