# The platform floor (relay.js) on bare workerd. scripts/bench.sh sets the
# port and the storage directory with --socket-addr / --directory-path.
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "floor", worker = .floor),
    (name = "do-storage", disk = (path = "storage", writable = true)),
  ],
  sockets = [(name = "http", address = "127.0.0.1:9400", http = (), service = "floor")],
);

const floor :Workerd.Worker = (
  modules = [(name = "relay.js", esModule = embed "relay.js")],
  compatibilityDate = "2026-04-01",
  bindings = [(name = "ROOM", durableObjectNamespace = "Room")],
  # SQLite-backed like ours, though the floor never writes.
  durableObjectNamespaces = [(className = "Room", uniqueKey = "floor-Room", enableSql = true)],
  durableObjectStorage = (localDisk = "do-storage"),
);
