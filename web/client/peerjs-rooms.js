// peerjs-rooms: joins a game room of this server with the stock `peerjs`
// client (1.5.x), unmodified. What every game otherwise writes by hand:
// fetch the ICE servers (short-lived TURN credentials) for the room token,
// open the Peer, read the roster and connect (data) and call (media)
// everyone already there, answer everyone who arrives later, follow LEAVE,
// and reconnect with jittered backoff after the server connection drops.
//
// It relies only on what the server guarantees: the roster endpoint, LEAVE
// when a peer goes, a refusal as an ERROR with a reason, and a reconnect with
// the same id and token being taken back. No polling.

const DEFAULT_BACKOFF = { initialMs: 500, maxMs: 15_000, maxAttempts: 12, stableMs: 30_000 };

/**
 * The server's ERROR to a socket replaced by a newer one of the same id
 * (the same player in another tab or device). Taking the id back would
 * replace that newer tab in turn, for ever: this one leaves instead.
 */
const REPLACED = /another tab or device|replaced by a newer connection/i;

/** Plain words for the stock client's error types. */
const PLAIN_WORDS = {
  'server-error': (m) => `The server refused: ${m}`,
  replaced: () => 'This player joined from another tab or device, so this one left the room.',
  'unavailable-id': () => 'Someone in this room already uses that name.',
  'peer-unavailable': (m) => `That player is not reachable any more (${m}).`,
  network: () => 'Lost the connection to the server.',
  'browser-incompatible': () => 'This browser cannot make calls.',
  'invalid-id': () => 'That name cannot be used: letters and digits, with single spaces, dashes or underscores between them.',
  'ice-servers': (m) => `Could not get the relay servers for calls: ${m}`,
  roster: (m) => `Could not read who is in the room: ${m}`,
  webrtc: (m) => `A call could not be set up: ${m}`,
};

/** The stock client's error, or one of ours, with a sentence a player can read. */
export function describeError(type, message) {
  const words = PLAIN_WORDS[type];
  return words ? words(message) : message;
}

/**
 * Refusals the server asks the client to retry ("..., retry later"); every
 * other server-error (room full, removed, bad ticket) is final.
 */
function isRetryable(type, message) {
  return type === 'network' || (type === 'server-error' && /retry later/i.test(String(message)));
}

/** A small event emitter: on/off/once/emit, listeners that throw do not stop others. */
class Emitter {
  #listeners = new Map();

  on(event, fn) {
    if (!this.#listeners.has(event)) this.#listeners.set(event, new Set());
    this.#listeners.get(event).add(fn);
    return this;
  }

  off(event, fn) {
    this.#listeners.get(event)?.delete(fn);
    return this;
  }

  once(event, fn) {
    const wrapped = (...args) => {
      this.off(event, wrapped);
      fn(...args);
    };
    return this.on(event, wrapped);
  }

  emit(event, ...args) {
    for (const fn of [...(this.#listeners.get(event) ?? [])]) {
      try {
        fn(...args);
      } catch (e) {
        setTimeout(() => {
          throw e;
        });
      }
    }
  }
}

/** The HTTP base of the server, as the stock client builds it. */
function httpBase({ host, port, path, secure }) {
  const normalized = `/${path ?? '/'}/`.replace(/\/+/g, '/');
  return `${secure ? 'https' : 'http'}://${host}:${port}${normalized}`;
}

/** One room joined through the stock client; see {@link joinRoom}. */
export class Room extends Emitter {
  /** @type {import('peerjs').Peer | null} */
  peer = null;
  /** Remote peers by id: `{ data, call, stream }`. */
  peers = new Map();
  #opts;
  #iceServers = [];
  #attempt = 0;
  #retryTimer = null;
  /** Resets the backoff once a connection has stayed up for `stableMs`. */
  #stableTimer = null;
  #lastError = null;
  #left = false;
  /** Connections this side started (for the glare rule). */
  #outgoing = new WeakSet();

  constructor(opts) {
    super();
    this.#opts = opts;
    for (const [event, fn] of Object.entries(opts.on ?? {})) this.on(event, fn);
  }

  /** This peer's id once open. */
  get id() {
    return this.peer?.id ?? null;
  }

  /** The ICE servers the room's calls use (fetched from the server). */
  get iceServers() {
    return this.#iceServers;
  }

  /** Sends `data` to one peer over its DataConnection; false if it is not open. */
  send(id, data) {
    const conn = this.peers.get(id)?.data;
    if (!conn?.open) return false;
    conn.send(data);
    return true;
  }

  /** Sends `data` to every peer with an open DataConnection; returns how many. */
  broadcast(data) {
    let sent = 0;
    for (const id of this.peers.keys()) if (this.send(id, data)) sent += 1;
    return sent;
  }

  /** Leaves the room for good: closes every connection and the Peer. */
  leave() {
    clearTimeout(this.#retryTimer);
    this.#close({ reason: 'left' });
  }

  async open() {
    const o = this.#opts;
    this.#iceServers = await this.#fetchIceServers();
    const PeerClass = o.Peer ?? globalThis.Peer;
    if (typeof PeerClass !== 'function') {
      throw new Error('peerjs-rooms: pass the Peer class from the peerjs package as the Peer option');
    }
    const options = {
      host: o.host,
      port: o.port,
      path: o.path ?? '/',
      secure: o.secure,
      key: o.key ?? 'peerjs',
      token: o.token,
      config: { ...(o.config ?? {}), iceServers: this.#iceServers },
      debug: o.debug ?? 0,
    };
    const peer = o.id ? new PeerClass(o.id, options) : new PeerClass(options);
    this.peer = peer;
    peer.on('connection', (conn) => this.#adoptData(conn));
    peer.on('call', (call) => {
      call.answer(o.stream ?? undefined);
      this.#adoptCall(call);
    });
    peer.on('error', (e) => this.#onError(e.type, e.message));
    peer.on('disconnected', () => this.#onDisconnected());
    peer.on('open', (id) => this.#onOpen(id));
    // LEAVE comes on the signaling socket; the stock client closes that
    // peer's connections on it without an event of its own.
    peer.socket?.on?.('message', (msg) => {
      if (msg?.type === 'LEAVE' && typeof msg.src === 'string') this.#gone(msg.src, 'left');
    });
    return new Promise((resolve, reject) => {
      const opened = () => {
        this.off('closed', failed);
        resolve(this);
      };
      const failed = (info) => {
        this.off('open', opened);
        reject(Object.assign(new Error(info.message ?? 'could not join the room'), info));
      };
      this.once('open', opened);
      this.once('closed', failed);
    });
  }

  async #fetchIceServers() {
    const o = this.#opts;
    if (o.iceServers) return o.iceServers;
    const url = new URL(`${httpBase(o)}${o.key ?? 'peerjs'}/ice-servers`);
    if (o.id) url.searchParams.set('id', o.id);
    try {
      const res = await (o.fetch ?? fetch)(url, { headers: { Authorization: `Bearer ${o.token}` } });
      const body = await res.json().catch(() => ({}));
      if (!res.ok) throw new Error(body.error ?? `HTTP ${res.status}`);
      return Array.isArray(body.iceServers) ? body.iceServers : [];
    } catch (e) {
      // Calls between players on open networks still work without them.
      this.#report('ice-servers', e.message);
      return [];
    }
  }

  async #readRoster() {
    const o = this.#opts;
    const url = `${httpBase(o)}${o.key ?? 'peerjs'}/peers`;
    try {
      const res = await (o.fetch ?? fetch)(url, { headers: { Authorization: `Bearer ${o.token}` } });
      const body = await res.json().catch(() => null);
      if (!res.ok) throw new Error(body?.error ?? `HTTP ${res.status}`);
      return Array.isArray(body) ? body : [];
    } catch (e) {
      this.#report('roster', e.message);
      return [];
    }
  }

  async #onOpen(id) {
    const reconnected = this.#attempt > 0;
    // The backoff starts again only once this connection has held: a server
    // that drops us right after each OPEN must not get a retry every 500 ms.
    clearTimeout(this.#stableTimer);
    this.#stableTimer = setTimeout(() => {
      this.#attempt = 0;
    }, this.#backoff().stableMs);
    this.#lastError = null;
    this.emit(reconnected ? 'reconnected' : 'open', id);
    // Whoever joins calls those already there; they answer.
    const roster = await this.#readRoster();
    if (this.#left) return;
    for (const other of roster) {
      if (other === id) continue;
      const known = this.peers.get(other);
      if (!known?.data) {
        const conn = this.peer.connect(other, { reliable: true });
        this.#outgoing.add(conn);
        this.#adoptData(conn);
      }
      if (this.#opts.stream && !known?.call) {
        const call = this.peer.call(other, this.#opts.stream);
        this.#outgoing.add(call);
        this.#adoptCall(call);
      }
    }
    // Back from a drop: whoever left meanwhile sent a LEAVE we missed.
    if (reconnected) {
      for (const [other, entry] of this.peers) {
        if (!roster.includes(other) && !entry.data?.open) this.#gone(other, 'left');
      }
    }
  }

  #entry(id) {
    let entry = this.peers.get(id);
    if (!entry) {
      entry = { data: null, call: null, stream: null };
      this.peers.set(id, entry);
      this.emit('peer-joined', id);
    }
    return entry;
  }

  /**
   * Whether `offered` should replace `existing` as the connection to a peer.
   * Two peers that joined together both start one ("glare"): both sides
   * keep the one started by the smaller id. One started by the same side
   * as the existing one replaces it (that side started over).
   */
  #keeps(existing, offered) {
    if (!existing || existing === offered) return true;
    const starter = (c) => (this.#outgoing.has(c) ? this.id : c.peer);
    if (starter(existing) === starter(offered)) return true;
    return starter(offered) < starter(existing);
  }

  /**
   * Makes `conn` the peer's `kind` ('data' or 'call') connection, closing the
   * one it replaces; answers the peer's entry, or null when the glare rule
   * keeps the existing one (then `conn` is closed). Either way the closed
   * one is no longer the entry's, so its 'close' is not a departure.
   */
  #install(kind, conn) {
    const entry = this.#entry(conn.peer);
    const old = entry[kind];
    if (!this.#keeps(old, conn)) {
      conn.close();
      return null;
    }
    entry[kind] = conn;
    if (old && old !== conn) old.close();
    conn.on('close', () => this.#closed(conn.peer, conn));
    conn.on('error', (e) => this.#report('webrtc', e.message));
    return entry;
  }

  #adoptData(conn) {
    if (!this.#install('data', conn)) return;
    conn.on('open', () => this.emit('connection', conn.peer, conn));
    conn.on('data', (data) => this.emit('data', conn.peer, data));
  }

  #adoptCall(call) {
    const entry = this.#install('call', call);
    if (!entry) return;
    call.on('stream', (stream) => {
      entry.stream = stream;
      this.emit('stream', call.peer, stream);
    });
  }

  /** One of a peer's connections closed; the peer is gone when none is left. */
  #closed(id, conn) {
    const entry = this.peers.get(id);
    if (!entry) return;
    if (entry.data === conn) entry.data = null;
    if (entry.call === conn) {
      entry.call = null;
      entry.stream = null;
    }
    if (!entry.data && !entry.call) this.#gone(id, 'closed');
  }

  #gone(id, reason) {
    const entry = this.peers.get(id);
    if (!entry) return;
    this.peers.delete(id);
    entry.data?.close();
    entry.call?.close();
    this.emit('peer-left', id, { reason });
  }

  #report(type, message) {
    this.emit('error', { type, message, text: describeError(type, message) });
  }

  #onError(type, message) {
    this.#lastError = { type, message };
    this.#report(type, message);
    // Refused before the first OPEN: the stock client destroys the Peer.
    if (this.peer?.destroyed && !this.#left) {
      this.#left = true;
      this.emit('closed', { reason: 'refused', type, message, text: describeError(type, message) });
    }
  }

  #backoff() {
    return { ...DEFAULT_BACKOFF, ...(this.#opts.reconnect ?? {}) };
  }

  #close(closed) {
    this.#left = true;
    clearTimeout(this.#stableTimer);
    this.peer?.destroy();
    this.emit('closed', closed);
  }

  /** The server connection dropped (or the server refused us): retry or give up. */
  #onDisconnected() {
    clearTimeout(this.#stableTimer);
    if (this.#left || this.peer?.destroyed) return;
    const { type = 'network', message = '' } = this.#lastError ?? {};
    const backoff = this.#backoff();
    if (type === 'server-error' && REPLACED.test(String(message))) {
      this.#close({ reason: 'replaced', type: 'replaced', message, text: describeError('replaced', message) });
      return;
    }
    if (!isRetryable(type, message) || this.#attempt >= backoff.maxAttempts) {
      this.#close({ reason: 'refused', type, message, text: describeError(type, message) });
      return;
    }
    // Equal jitter over an exponential ceiling: at least half the ceiling,
    // so retries slow down as they fail, and the rest random, so a room's
    // players do not all come back in the same instant after an outage.
    const ceiling = Math.min(backoff.maxMs, backoff.initialMs * 2 ** this.#attempt);
    const delayMs = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
    this.#attempt += 1;
    this.emit('reconnecting', { attempt: this.#attempt, delayMs });
    this.#retryTimer = setTimeout(() => {
      if (this.#left || this.peer?.destroyed) return;
      this.#lastError = null;
      this.peer.reconnect();
    }, delayMs);
  }
}

/**
 * Joins a room. Resolves with the {@link Room} once the server opened it;
 * rejects with the server's reason (`err.text`) if it refused.
 *
 * @param {import('./peerjs-rooms').JoinOptions} options
 * @returns {Promise<Room>}
 */
export function joinRoom(options) {
  if (!options?.host || !options?.token) {
    return Promise.reject(new Error('peerjs-rooms: host and token are required'));
  }
  const port = options.port ?? (options.secure ? 443 : 80);
  return new Room({ ...options, port }).open();
}
