import { SecAggDownSchema, SimpleAckSchema, type SecAggClientConfig } from '@flotilla/protocol';
import { SecAggDevice } from './secagg-device.js';

/** How the client lets secure aggregation talk over its socket. */
export interface SecAggChannel {
  emitWithAck(event: 'secagg', payload: { taskId: string; round: number; phase: 'keys' | 'shares' | 'unmask'; data: Uint8Array }): Promise<unknown>;
  /** A failure the client reports through its 'error' event. */
  onError(err: unknown): void;
  /** After each message this device sent (for apps, tests and fault injection). */
  onPhase?(e: { round: number; phase: 'keys' | 'shares' | 'unmask' }): void;
}

/**
 * The secure-aggregation rounds of one client (client.ts calls `begin` on a fit instruction whose
 * plan asks for it, hands every `secagg` server message to `onMessage`, and `end`s the round when
 * it reports, is cancelled or fails). Keeps only the rounds in flight.
 */
export class SecAggClient {
  private readonly rounds = new Map<number, SecAggDevice>();

  constructor(private readonly channel: SecAggChannel) {}

  /** Start a round: keys are advertised at once, while the device trains. */
  begin(taskId: string, round: number, cfg: SecAggClientConfig): SecAggDevice {
    for (const r of [...this.rounds.keys()]) this.end(r); // one round at a time: a new instruction supersedes older ones
    const device = new SecAggDevice(taskId, round, cfg, async (phase, data) => {
      const ack = SimpleAckSchema.parse(await this.channel.emitWithAck('secagg', { taskId, round, phase, data }));
      if (!ack.ok) throw new Error(`secure aggregation ${phase} refused: ${ack.error.code}`);
      this.channel.onPhase?.({ round, phase });
    });
    this.rounds.set(round, device);
    device.advertise().catch((err) => this.channel.onError(err));
    return device;
  }

  end(round: number): void {
    this.rounds.get(round)?.abort();
    this.rounds.delete(round);
  }

  onMessage(raw: unknown): void {
    const p = SecAggDownSchema.safeParse(raw);
    if (!p.success) return this.channel.onError(new Error(`invalid secagg message: ${p.error.message}`));
    const device = this.rounds.get(p.data.round);
    if (!device || device.taskId !== p.data.taskId) return;
    device.onMessage(p.data).catch((err) => this.channel.onError(err));
  }
}
