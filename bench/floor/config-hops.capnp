# The platform floor behind two pass-through Workers (front.js), the same
# number of hops as ours (router -> rooms Worker -> Durable Object).
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "front", worker = (modules = [(name = "front.js", esModule = embed "front.js")],
                               compatibilityDate = "2026-04-01", bindings = [(name = "NEXT", service = "entry")])),
    (name = "entry", worker = (modules = [(name = "front.js", esModule = embed "front.js")],
                               compatibilityDate = "2026-04-01", bindings = [(name = "NEXT", service = "floor")])),
    (name = "floor", worker = .floor),
    (name = "do-storage", disk = (path = "storage", writable = true)),
  ],
  sockets = [(name = "http", address = "127.0.0.1:9400", http = (), service = "front")],
);

const floor :Workerd.Worker = (
  modules = [(name = "relay.js", esModule = embed "relay.js")],
  compatibilityDate = "2026-04-01",
  bindings = [(name = "ROOM", durableObjectNamespace = "Room")],
  # SQLite-backed like ours, though the floor never writes.
  durableObjectNamespaces = [(className = "Room", uniqueKey = "floor-Room", enableSql = true)],
  durableObjectStorage = (localDisk = "do-storage"),
);
