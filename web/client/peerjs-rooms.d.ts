// Types of peerjs-rooms (see peerjs-rooms.js and README.md).
import type { DataConnection, MediaConnection, Peer, PeerOptions } from 'peerjs';

export interface Backoff {
  /** First delay ceiling in ms (default 500); doubles per attempt. */
  initialMs?: number;
  /** Largest delay ceiling in ms (default 15000). */
  maxMs?: number;
  /** Attempts before giving up with `closed` (default 12). */
  maxAttempts?: number;
  /** How long a connection must hold before the attempts count from 0 again (default 30000). */
  stableMs?: number;
}

export interface RoomError {
  /** The stock client's error type, or `ice-servers`, `roster`, `webrtc`. */
  type: string;
  message: string;
  /** The same in plain words for a player. */
  text: string;
}

export interface Closed {
  /** `replaced`: the same player joined from another tab or device; this one does not take the id back. */
  reason: 'left' | 'refused' | 'replaced';
  type?: string;
  message?: string;
  text?: string;
}

export interface RoomEvents {
  open: (id: string) => void;
  reconnected: (id: string) => void;
  reconnecting: (info: { attempt: number; delayMs: number }) => void;
  'peer-joined': (id: string) => void;
  'peer-left': (id: string, info: { reason: 'left' | 'closed' }) => void;
  connection: (id: string, conn: DataConnection) => void;
  data: (id: string, data: unknown) => void;
  stream: (id: string, stream: MediaStream) => void;
  error: (error: RoomError) => void;
  closed: (info: Closed) => void;
}

export interface JoinOptions {
  host: string;
  /** Default 443 when secure, else 80. */
  port?: number;
  /** The server's mount path (default '/'). */
  path?: string;
  secure?: boolean;
  /** Default 'peerjs'. */
  key?: string;
  /** The room ticket (production) or the room id (local dev). */
  token: string;
  /** This player's id; the server makes one up when absent. */
  id?: string;
  /** Sent to everyone in the room and to everyone who arrives. */
  stream?: MediaStream;
  /** The Peer class of the peerjs package; default globalThis.Peer. */
  Peer?: typeof Peer;
  /** Skip the /ice-servers fetch and use these. */
  iceServers?: RTCIceServer[];
  /** Merged into the RTCConfiguration (iceServers come from the server). */
  config?: RTCConfiguration;
  reconnect?: Backoff;
  /** Listeners attached before anything happens. */
  on?: Partial<RoomEvents>;
  debug?: PeerOptions['debug'];
  fetch?: typeof fetch;
}

export interface RemotePeer {
  data: DataConnection | null;
  call: MediaConnection | null;
  stream: MediaStream | null;
}

export declare class Room {
  readonly peer: Peer | null;
  readonly peers: Map<string, RemotePeer>;
  readonly id: string | null;
  readonly iceServers: RTCIceServer[];
  on<E extends keyof RoomEvents>(event: E, fn: RoomEvents[E]): this;
  once<E extends keyof RoomEvents>(event: E, fn: RoomEvents[E]): this;
  off<E extends keyof RoomEvents>(event: E, fn: RoomEvents[E]): this;
  send(id: string, data: unknown): boolean;
  broadcast(data: unknown): number;
  leave(): void;
}

/** Resolves once the server opened the room; rejects with its reason. */
export declare function joinRoom(options: JoinOptions): Promise<Room>;
/** A sentence a player can read for an error type and message. */
export declare function describeError(type: string, message: string): string;
