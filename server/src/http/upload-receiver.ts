import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyBaseLogger } from 'fastify';
import { AppError } from '../errors.js';
import type { Coordinator } from '../coordinator/coordinator.js';
import { countRejection, receiveReport } from '../coordinator/report-upload.js';
import { UploadConnection } from './upload-connection.js';

export interface UploadReceiverOptions {
  coordinator: Coordinator;
  log: FastifyBaseLogger;
  /** Largest Content-Length taken at all (the app's maxUpdateBytes); each plan's own limit is checked by receiveReport. */
  maxBodyBytes: number;
  /** Largest request head, bytes (default 8 KiB; 431 past it). */
  maxHeadBytes?: number;
  /** Head within this long of waiting for a request (default 10 s). */
  headerTimeoutMs?: number;
  /** Longest pause in a body (default 30 s). */
  bodyIdleTimeoutMs?: number;
}

export interface UploadReceiver {
  /** Destroys the connections this receiver holds (those handed to the HTTP server are its own). */
  close(): void;
  /** Connections held now. */
  readonly connections: number;
}

/**
 * The dedicated report receiver (docs/cluster.md, "The report upload channel") on the HTTP server's
 * own port: every accepted plain-TCP connection starts in an UploadConnection
 * (upload-connection.ts), which reads report uploads itself and hands any other request, with its
 * bytes, to the HTTP server's original 'connection' listeners (fastify, socket.io) for good. No URL,
 * port or load-balancer rule changes; the fastify route (report-upload-routes.ts) stays for TLS and
 * for `reportReceiver: 'fastify'`. Call before listen, on a plain http.Server.
 */
export function installUploadReceiver(server: Server, o: UploadReceiverOptions): UploadReceiver {
  const originals = server.listeners('connection') as Array<(socket: Socket) => void>;
  server.removeAllListeners('connection');
  const held = new Set<UploadConnection>();
  const refused = (err: AppError) => countRejection(o.coordinator, err.code);
  const options = {
    maxHeadBytes: o.maxHeadBytes ?? 8 * 1024,
    maxBodyBytes: o.maxBodyBytes,
    headerTimeoutMs: o.headerTimeoutMs ?? 10_000,
    bodyIdleTimeoutMs: o.bodyIdleTimeoutMs ?? 30_000,
    log: o.log,
    refused,
    handOff: (socket: Socket) => {
      for (const l of originals) l.call(server, socket);
    },
    released: (c: UploadConnection) => void held.delete(c),
    handle: async (head: { token: string; meta: string | undefined; contentLength: number }, body: Parameters<typeof receiveReport>[1]['body']) => {
      try {
        await receiveReport(o.coordinator, { token: head.token, meta: head.meta, declared: head.contentLength, body });
      } catch (err) {
        if (err instanceof AppError) refused(err);
        throw err;
      }
    },
  };
  server.on('connection', (socket: Socket) => void held.add(new UploadConnection(socket, options)));
  return {
    close: () => {
      for (const c of held) c.destroy();
      held.clear();
    },
    get connections() {
      return held.size;
    },
  };
}
