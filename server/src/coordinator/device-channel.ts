import type { ServerToClientEvents } from '@flotilla/protocol';
import type { SessionTable } from './sessions.js';

/**
 * The outbound interface of a task runner (docs/cluster.md): how the round state machine reaches
 * devices without touching sockets. One node: the gateway's session table (LocalDeviceChannel).
 * Cluster: the fleet membership in Redis plus socket.io's Redis adapter (cluster/cluster-channel.ts).
 * Contracts: `eligible` lists devices of the task connected now (anywhere they are connected);
 * `connected` answers for one device the same way; `send` returns false when the device is known
 * not to be connected (the event is then not sent), true when it was handed to a transport.
 */
export type ServerEvent = keyof ServerToClientEvents;
export type ServerPayload<E extends ServerEvent> = Parameters<ServerToClientEvents[E]>[0];

export interface DeviceChannel {
  eligible(taskId: string): string[];
  connected(deviceId: string): boolean;
  send<E extends ServerEvent>(deviceId: string, event: E, payload: ServerPayload<E>): boolean;
  /** Every connected device of the task. */
  broadcast<E extends ServerEvent>(taskId: string, event: E, payload: ServerPayload<E>): void;
}

/** The devices connected to this process (the gateway's sessions). */
export class LocalDeviceChannel implements DeviceChannel {
  constructor(private readonly sessions: SessionTable) {}

  eligible(taskId: string): string[] {
    return this.sessions.forTask(taskId).map((s) => s.deviceId);
  }

  connected(deviceId: string): boolean {
    return this.sessions.get(deviceId) !== undefined;
  }

  send<E extends ServerEvent>(deviceId: string, event: E, payload: ServerPayload<E>): boolean {
    const s = this.sessions.get(deviceId);
    if (!s) return false;
    (s.socket.emit as (e: string, p: unknown) => boolean)(event, payload);
    return true;
  }

  broadcast<E extends ServerEvent>(taskId: string, event: E, payload: ServerPayload<E>): void {
    for (const s of this.sessions.forTask(taskId)) (s.socket.emit as (e: string, p: unknown) => boolean)(event, payload);
  }
}
