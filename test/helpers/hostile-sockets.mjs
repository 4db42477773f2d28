// Hostile socket traffic against a coordinator, in its own process so that the junk it builds and
// masks does not share the event loop of the server being measured (test/chaos/socket-edge.test.ts).
// argv: url token taskId protocolVersion. Prints "started" once traffic flows, and a JSON line of
// counts on SIGTERM.
import WebSocket from 'ws';
import { io } from 'socket.io-client';

const [url, token, taskId, protocolVersion] = process.argv.slice(2);
const junk = 'x'.repeat(3 << 20);
const sent = { preAuthFrames: 0, events: 0 };
let stop = false;
let started = false;
const maybeStarted = () => {
  if (!started && sent.preAuthFrames >= 1 && sent.events >= 4) {
    started = true;
    console.log('started');
  }
};

async function unauthenticated() {
  while (!stop) {
    await new Promise((resolve) => {
      const ws = new WebSocket(`${url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket`);
      ws.on('error', () => undefined);
      ws.on('close', resolve);
      ws.once('message', () => {
        ws.send(`0${junk}`);
        sent.preAuthFrames++;
        maybeStarted();
      });
    });
  }
}

async function authenticated() {
  const s = io(url, { transports: ['websocket'], reconnection: false, forceNew: true, auth: { protocolVersion: Number(protocolVersion), token, taskId } });
  await new Promise((resolve, reject) => {
    s.once('session', resolve);
    s.once('connect_error', reject);
  });
  const send = (e, p) => s.timeout(30_000).emitWithAck(e, p).catch(() => null);
  while (!stop && s.connected) {
    await Promise.all([
      send('heartbeat', { pad: junk }),
      send('fit:report', { taskId, round: 1, delta: new Uint8Array(3 << 20) }),
      send('eval:report', new Uint8Array(8192)),
      send('no-such-event', {}),
    ]);
    sent.events += 4;
    maybeStarted();
  }
  s.disconnect();
}

const all = [...Array.from({ length: 4 }, unauthenticated), ...Array.from({ length: 4 }, authenticated)];
process.on('SIGTERM', () => {
  stop = true;
  console.log(JSON.stringify(sent));
  process.exit(0);
});
await Promise.all(all);
