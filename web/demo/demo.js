// The demo: join ?room=NAME with the unmodified PeerJS client, read the
// roster, call everyone already there, show the videos and plain-word errors.
(() => {
  const params = new URLSearchParams(location.search);
  const room = params.get('room') || 'lobby';
  const token = params.get('token') || room; // a room ticket in production, the room id locally
  const $ = (id) => document.getElementById(id);
  $('room').textContent = room;

  const FRIENDLY = {
    'server-error': (m) => `The server refused: ${m}`,
    'unavailable-id': () => 'Someone in this room already uses that name.',
    'peer-unavailable': (m) => `That player is not reachable any more (${m}).`,
    network: () => 'Lost the connection to the server; trying again…',
    'browser-incompatible': () => 'This browser cannot make video calls.',
  };
  const showError = (type, message) => {
    $('error').textContent = (FRIENDLY[type] || (() => message))(message);
  };

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

  const id = params.get('id') || undefined;
  const peer = new Peer(id, {
    host: location.hostname,
    port: Number(location.port) || (location.protocol === 'https:' ? 443 : 80),
    path: '/',
    token,
    secure: location.protocol === 'https:',
    config: { iceServers: [] },
  });
  window.demoPeer = peer;
  let localStream = null;
  const calls = new Map();

  async function camera() {
    if (!localStream) {
      localStream = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
      showVideo('me', localStream, `you (${peer.id})`);
    }
    return localStream;
  }

  function track(call) {
    calls.set(call.peer, call);
    call.on('stream', (remote) => showVideo(call.peer, remote, call.peer));
    call.on('close', () => { dropVideo(call.peer); calls.delete(call.peer); });
    call.on('error', (e) => showError(e.type, e.message));
  }

  async function refreshRoster() {
    const res = await fetch(`/peerjs/peers?token=${encodeURIComponent(token)}`);
    if (!res.ok) return [];
    const ids = await res.json();
    $('roster').innerHTML = '';
    for (const other of ids) {
      const li = document.createElement('li');
      li.textContent = other === peer.id ? `${other} (you)` : other;
      if (other === peer.id) li.className = 'me';
      $('roster').appendChild(li);
    }
    return ids;
  }

  peer.on('open', async (myId) => {
    $('status').textContent = `Joined as ${myId}`;
    $('error').textContent = '';
    const stream = await camera();
    // Call everyone already here; peers that join later call us.
    for (const other of await refreshRoster()) {
      if (other !== myId && !calls.has(other)) track(peer.call(other, stream));
    }
  });
  peer.on('call', async (call) => {
    call.answer(await camera());
    track(call);
    refreshRoster();
  });
  peer.on('error', (e) => showError(e.type, e.message));
  peer.on('disconnected', () => {
    $('status').textContent = 'Reconnecting…';
    setTimeout(() => { if (!peer.destroyed) peer.reconnect(); }, 1000);
  });
  setInterval(() => { if (peer.open) refreshRoster(); }, 3000);
})();
