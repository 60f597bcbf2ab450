// The demo: join ?room=NAME through the room helper (web/client), which
// wraps the unmodified PeerJS client: it fetches the ICE servers, reads the
// roster, calls everyone already there, answers everyone who arrives, follows
// LEAVE and reconnects. This page only draws what the helper reports.
import { joinRoom } from './vendor/peerjs-rooms.js';

const params = new URLSearchParams(location.search);
const room = params.get('room') || 'lobby';
const token = params.get('token') || room; // a room ticket in production, the room id locally
const $ = (id) => document.getElementById(id);
$('room').textContent = room;

const videos = new Map();
function showVideo(id, stream, label) {
  let fig = videos.get(id);
  if (!fig) {
    fig = document.createElement('figure');
    fig.innerHTML = '<video autoplay playsinline muted></video><figcaption></figcaption>';
    $('videos').appendChild(fig);
    videos.set(id, fig);
  }
  fig.querySelector('video').srcObject = stream;
  fig.querySelector('figcaption').textContent = label;
}
function dropVideo(id) {
  videos.get(id)?.remove();
  videos.delete(id);
}

let current = null;
function drawRoster() {
  $('roster').innerHTML = '';
  const ids = current ? [current.id, ...current.peers.keys()] : [];
  for (const other of ids.sort()) {
    const li = document.createElement('li');
    li.textContent = other === current.id ? `${other} (you)` : other;
    if (other === current.id) li.className = 'me';
    $('roster').appendChild(li);
  }
}

const secure = location.protocol === 'https:';
const stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
showVideo('me', stream, 'you');
try {
  current = await joinRoom({
    host: location.hostname,
    port: Number(location.port) || (secure ? 443 : 80),
    path: '/',
    secure,
    token,
    id: params.get('id') || undefined,
    stream,
    on: {
      'peer-joined': drawRoster,
      'peer-left': (id) => { dropVideo(id); drawRoster(); },
      stream: (id, remote) => showVideo(id, remote, id),
      error: (e) => { $('error').textContent = e.text; },
      reconnecting: ({ delayMs }) => { $('status').textContent = `Reconnecting in ${Math.ceil(delayMs / 1000)} s…`; },
      reconnected: (id) => { $('status').textContent = `Joined as ${id}`; $('error').textContent = ''; },
      closed: (info) => { if (info.text) $('status').textContent = info.text; },
    },
  });
  window.demoRoom = current;
  window.demoPeer = current.peer;
  $('status').textContent = `Joined as ${current.id}`;
  $('error').textContent = '';
  showVideo('me', stream, `you (${current.id})`);
  drawRoster();
} catch (e) {
  $('status').textContent = e.text ?? e.message;
}
