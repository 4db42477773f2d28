import type { Server } from 'socket.io';
import type { DeviceChannel, ServerEvent, ServerPayload } from '../coordinator/device-channel.js';
import type { SessionTable } from '../coordinator/sessions.js';
import type { Fleet } from './fleet.js';

/** Rooms every device socket joins in cluster mode, so that any node can reach it through the adapter. */
export const deviceRoom = (deviceId: string) => `dev:${deviceId}`;
export const taskRoom = (taskId: string) => `task:${taskId}`;

/**
 * DeviceChannel across nodes: devices of this node are reached on their socket directly, the
 * others through socket.io's Redis adapter (a room per device); who is connected comes from the
 * fleet mirror (see fleet.ts). `io` is set once the socket.io server exists.
 */
export class ClusterDeviceChannel implements DeviceChannel {
  io: Server | null = null;

  constructor(
    private readonly sessions: SessionTable,
    private readonly fleet: Fleet,
  ) {}

  eligible(taskId: string): string[] {
    return this.fleet.eligible(taskId);
  }

  connected(deviceId: string): boolean {
    return this.sessions.get(deviceId) !== undefined || this.fleet.nodeOf(deviceId) !== undefined;
  }

  send<E extends ServerEvent>(deviceId: string, event: E, payload: ServerPayload<E>): boolean {
    const local = this.sessions.get(deviceId);
    if (local) {
      (local.socket.emit as (e: string, p: unknown) => boolean)(event, payload);
      return true;
    }
    if (!this.io || this.fleet.nodeOf(deviceId) === undefined) return false;
    (this.io.to(deviceRoom(deviceId)).emit as (e: string, p: unknown) => boolean)(event, payload);
    return true;
  }

  broadcast<E extends ServerEvent>(taskId: string, event: E, payload: ServerPayload<E>): void {
    if (this.io) (this.io.to(taskRoom(taskId)).emit as (e: string, p: unknown) => boolean)(event, payload);
  }
}
