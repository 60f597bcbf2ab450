// Not shipped: a typed use of the helper, so `make lint` (tsc) checks that
// peerjs-rooms.d.ts agrees with the peerjs package's own types.
import { Peer } from 'peerjs';
import { describeError, joinRoom, type Room } from './peerjs-rooms';

export async function play(stream: MediaStream, ticket: string): Promise<Room> {
  const room = await joinRoom({
    host: 'signal.example.com',
    secure: true,
    path: '/peerjs',
    token: ticket,
    id: 'alice',
    stream,
    Peer,
    reconnect: { initialMs: 250, maxAttempts: 5 },
    on: {
      'peer-left': (id, { reason }) => console.log(id, reason),
      error: (e) => console.log(e.type, e.text),
      closed: ({ reason, text }) => console.log(reason, text ?? ''),
    },
  });
  room.on('stream', (id, remote) => console.log(id, remote.getTracks().length));
  room.on('data', (id, data) => console.log(id, data));
  const sent: number = room.broadcast({ move: 'e4' });
  const one: boolean = room.send('bob', 'hi');
  console.log(sent, one, room.id, room.peers.get('bob')?.stream, describeError('network', ''));
  return room;
}
