import type { Socket } from 'socket.io';
import type { ClientToServerEvents, ServerToClientEvents } from '@flotilla/protocol';

export type DeviceSocket = Socket<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;

export interface SocketData {
  /** Set by the handshake middleware once the credentials are accepted (server/src/coordinator/handshake.ts). */
  admitted?: AdmittedDevice;
  /** Set on connection; cleared when a newer connection of the same device replaced this one. */
  session?: DeviceSession;
}

export interface AdmittedDevice {
  deviceId: string;
  taskId: string;
  tokenId: string | null;
  backend?: string;
}

export interface DeviceSession {
  deviceId: string;
  sessionId: string;
  taskId: string;
  socket: DeviceSocket;
  connectedAt: number;
  lastSeen: number;
  backend?: string;
  /** Id of the enrolment token the device presented (null: the bootstrap device token). */
  tokenId: string | null;
  /** The upload its last ok `fit:ready` granted: a `fit:report` may be that large (plus the JSON envelope). */
  grant?: { round: number; bytes: number };
}

/** Told when a session becomes a device's current one and when a current one is removed (cluster membership). */
export interface SessionListener {
  opened(s: DeviceSession): void;
  closed(s: DeviceSession): void;
}

/**
 * Who is connected, by device. One live session per device: a device that connects again with
 * the same credential (a reconnect) replaces its old session, which is disconnected. Contract: `forTask` lists only
 * sessions whose socket is connected.
 */
export class SessionTable {
  private byDevice = new Map<string, DeviceSession>();
  private readonly listeners: SessionListener[] = [];

  /** Told of every session that becomes a device's current one, and of every current one removed (cluster membership). */
  listen(l: SessionListener): void {
    this.listeners.push(l);
  }

  add(s: DeviceSession): DeviceSession | undefined {
    const old = this.byDevice.get(s.deviceId);
    this.byDevice.set(s.deviceId, s);
    for (const l of this.listeners) l.opened(s);
    return old && old.sessionId !== s.sessionId ? old : undefined;
  }

  /** Remove a session if it is still the device's current one; returns whether it was. */
  remove(s: DeviceSession): boolean {
    if (this.byDevice.get(s.deviceId)?.sessionId !== s.sessionId) return false;
    this.byDevice.delete(s.deviceId);
    for (const l of this.listeners) l.closed(s);
    return true;
  }

  get(deviceId: string): DeviceSession | undefined {
    return this.byDevice.get(deviceId);
  }

  forTask(taskId: string): DeviceSession[] {
    const out: DeviceSession[] = [];
    for (const s of this.byDevice.values()) if (s.taskId === taskId && s.socket.connected) out.push(s);
    return out;
  }

  get size(): number {
    return this.byDevice.size;
  }

  all(): IterableIterator<DeviceSession> {
    return this.byDevice.values();
  }
}
