# The open namespace's platform floor (open.js), one object per peer id,
# delivering by JS RPC (a method on the destination's stub), on bare workerd.
# scripts/bench.sh sets the port and the storage directory with
# --socket-addr / --directory-path.
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "floor", worker = .floor),
    (name = "do-storage", disk = (path = "storage", writable = true)),
  ],
  sockets = [(name = "http", address = "127.0.0.1:9400", http = (), service = "floor")],
);

const floor :Workerd.Worker = (
  modules = [(name = "open.js", esModule = embed "open.js")],
  compatibilityDate = "2026-04-01",
  bindings = [
    (name = "HOME", durableObjectNamespace = "Home"),
    (name = "MODE", text = "rpc"),
  ],
  # SQLite-backed like ours, though the floor never writes.
  durableObjectNamespaces = [(className = "Home", uniqueKey = "floor-open-Home", enableSql = true)],
  durableObjectStorage = (localDisk = "do-storage"),
);
