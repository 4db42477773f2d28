import { io, type Socket } from 'socket.io-client';
import { PROTOCOL_VERSION, type FitInstruction } from '@flotilla/protocol';

/**
 * A device driven by hand over a raw socket.io-client, for protocol and bad-input tests: it sends
 * exactly what the test says, with no SDK validation in the way.
 */
export class RawDevice {
  readonly socket: Socket;
  readonly instructions: FitInstruction[] = [];
  deviceId = '';

  constructor(url: string) {
    this.socket = io(url, { transports: ['websocket'], reconnection: false, forceNew: true });
    this.socket.on('fit:instruction', (m: FitInstruction) => this.instructions.push(m));
  }

  async connected(): Promise<void> {
    if (this.socket.connected) return;
    await new Promise<void>((resolve, reject) => {
      this.socket.once('connect', () => resolve());
      this.socket.once('connect_error', reject);
    });
  }

  /** Emit with an ack and return the ack. */
  async send(event: string, payload: unknown): Promise<any> {
    await this.connected();
    return this.socket.timeout(10_000).emitWithAck(event, payload);
  }

  async hello(token: string, taskId: string, extra: Record<string, unknown> = {}): Promise<any> {
    const ack = await this.send('hello', { protocolVersion: PROTOCOL_VERSION, token, taskId, ...extra });
    if (ack.ok) this.deviceId = ack.deviceId;
    return ack;
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
    this.socket.disconnect();
  }
}
