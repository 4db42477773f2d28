import { io, type Socket } from 'socket.io-client';
import { PROTOCOL_VERSION, type FitInstruction } from '@flotilla/protocol';

/**
 * A device driven by hand over a raw socket.io-client, for protocol and bad-input tests: it sends
 * exactly what the test says, with no SDK validation in the way. Credentials go in the socket.io
 * handshake `auth`; `hello` opens a new connection with them and answers like an ack: the
 * `session` message as `{ ok: true, ... }`, or the refusal carried by `connect_error` as
 * `{ ok: false, error }`.
 */
export class RawDevice {
  socket!: Socket;
  readonly instructions: FitInstruction[] = [];
  deviceId = '';

  constructor(private readonly url: string) {}

  /** Open a connection presenting `auth` as is; resolves with the session or the refusal. */
  connect(auth: unknown): Promise<any> {
    this.socket?.disconnect();
    const socket = io(this.url, { transports: ['websocket'], reconnection: false, forceNew: true, auth: auth as Record<string, unknown> });
    this.socket = socket;
    socket.on('fit:instruction', (m: FitInstruction) => this.instructions.push(m));
    return new Promise((resolve) => {
      socket.once('session', (m: any) => {
        this.deviceId = m.deviceId;
        resolve({ ok: true, ...m });
      });
      socket.once('connect_error', (err: Error & { data?: unknown }) => resolve({ ok: false, error: err.data ?? { code: 'TRANSPORT', message: err.message } }));
    });
  }

  hello(token: string, taskId: string, extra: Record<string, unknown> = {}): Promise<any> {
    return this.connect({ protocolVersion: PROTOCOL_VERSION, token, taskId, ...extra });
  }

  /** Emit with an ack and return the ack. */
  async send(event: string, payload: unknown): Promise<any> {
    return this.socket.timeout(10_000).emitWithAck(event, payload);
  }

  /** A report the way the protocol asks for it: fit:ready for its size, then fit:report once granted. */
  async report(msg: { taskId: unknown; round: unknown; delta?: unknown; [k: string]: unknown }): Promise<any> {
    const bytes = (msg.delta as { byteLength?: number } | undefined)?.byteLength ?? 0;
    const ready = await this.send('fit:ready', { taskId: msg.taskId, round: msg.round, bytes });
    if (!ready.ok) return ready;
    return this.send('fit:report', msg);
  }

  async instruction(round: number, timeoutMs = 15_000): Promise<FitInstruction> {
    const t0 = Date.now();
    for (;;) {
      const i = this.instructions.find((x) => x.round === round);
      if (i) return i;
      if (Date.now() - t0 > timeoutMs) throw new Error(`no instruction for round ${round}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  close(): void {
    this.socket?.disconnect();
  }
}
