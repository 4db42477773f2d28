import * as parser from 'socket.io-parser';
import type { DeviceSocket } from './sessions.js';

/**
 * Size limits of device messages, enforced on the raw bytes BEFORE socket.io parses them (a
 * socket.io parser whose Decoder counts first; one Decoder per connection). The transport cap
 * (`maxHttpBufferSize`) is the last guard and closes the connection; these limits answer a coded
 * error instead and keep the connection.
 *
 * Contracts:
 * - Before the handshake is accepted, only small text packets (the CONNECT carrying `auth`) are
 *   read: at most `preAuthPackets` of at most `preAuthBytes` each, and no binary at all. Anything
 *   else closes the connection unparsed.
 * - After it, each event may be at most `limitFor(event)` bytes, JSON and binary attachments
 *   together. A larger one is never parsed nor kept: its attachments are counted and dropped, and
 *   the event is handed on as `[event, TOO_LARGE]` so that the gateway answers its ack with
 *   FL_ERR_PROTO_MESSAGE_TOO_LARGE.
 */
export interface PreAuthLimits {
  preAuthBytes: number;
  preAuthPackets: number;
}

const MARK = Symbol('flotilla.tooLarge');

/** What an over-limit event carries instead of its payload (made here only; recognised by a private symbol). */
export interface TooLarge {
  tooLarge: true;
  event: string;
  size: number;
  limit: number;
}

export function isTooLarge(x: unknown): x is TooLarge {
  return typeof x === 'object' && x !== null && (x as { [MARK]?: true })[MARK] === true;
}

interface Header {
  type: number;
  attachments: number;
  nsp: string;
  id?: number;
  event?: string;
}

/** Reads type, attachment count, namespace, ack id and event name off an encoded packet, without parsing its JSON. */
export function peekHeader(str: string): Header | null {
  const type = str.charCodeAt(0) - 48;
  if (!(type >= 0 && type <= 6)) return null;
  let i = 1;
  let attachments = 0;
  if (type === parser.PacketType.BINARY_EVENT || type === parser.PacketType.BINARY_ACK) {
    const dash = str.indexOf('-', 1);
    if (dash < 2 || dash > 8) return null;
    attachments = Number(str.slice(1, dash));
    if (!Number.isInteger(attachments) || attachments < 1) return null;
    i = dash + 1;
  }
  let nsp = '/';
  if (str[i] === '/') {
    let end = str.indexOf(',', i);
    if (end < 0) end = str.length;
    if (end - i > 256) return null;
    nsp = str.slice(i, end);
    i = end + 1;
  }
  let j = i;
  while (j < str.length && j - i < 16 && str.charCodeAt(j) >= 48 && str.charCodeAt(j) <= 57) j++;
  const id = j > i ? Number(str.slice(i, j)) : undefined;
  let event: string | undefined;
  if (str[j] === '[' && str[j + 1] === '"') {
    const end = str.indexOf('"', j + 2);
    if (end > 0 && end - j < 130) {
      const name = str.slice(j + 2, end);
      if (!name.includes('\\')) event = name;
    }
  }
  return { type, attachments, nsp, ...(id !== undefined ? { id } : {}), ...(event !== undefined ? { event } : {}) };
}

/**
 * The per-connection decoder. `authorise` switches it from the pre-authentication rule to the
 * per-event limits; the gateway calls it once the handshake was accepted.
 */
export class LimitedDecoder extends parser.Decoder {
  private limitFor: ((event: string | undefined) => number) | null = null;
  private preAuthSeen = 0;
  /** The binary event being received: its header, bytes so far, attachments still to come, and whether it is being dropped. */
  private pending: { head: Header; bytes: number; remaining: number; limit: number; dropping: boolean } | null = null;

  constructor(private readonly pre: PreAuthLimits) {
    super();
  }

  authorise(limitFor: (event: string | undefined) => number): void {
    this.limitFor = limitFor;
  }

  override add(obj: unknown): void {
    if (!this.limitFor) return this.addPreAuth(obj);
    if (typeof obj === 'string') return this.addText(obj, this.limitFor);
    return this.addBinary(obj);
  }

  private addPreAuth(obj: unknown): void {
    if (typeof obj !== 'string') throw new Error('binary data before authentication');
    if (++this.preAuthSeen > this.pre.preAuthPackets) throw new Error('too many packets before authentication');
    if (Buffer.byteLength(obj) > this.pre.preAuthBytes) throw new Error('packet too large before authentication');
    super.add(obj);
  }

  private addText(str: string, limitFor: (event: string | undefined) => number): void {
    if (this.pending) throw new Error('got plaintext data when reconstructing a packet');
    const size = Buffer.byteLength(str);
    const head = peekHeader(str);
    if (!head) {
      if (size > limitFor(undefined)) throw new Error('malformed oversize packet');
      return super.add(str);
    }
    const limit = limitFor(head.event);
    if (head.attachments === 0) {
      if (size > limit) return this.refuse(head, size, limit);
      return super.add(str);
    }
    const dropping = size > limit;
    this.pending = { head, bytes: size, remaining: head.attachments, limit, dropping };
    if (!dropping) super.add(str);
  }

  private addBinary(obj: unknown): void {
    const p = this.pending;
    if (!p) return super.add(obj); // throws: binary data outside a binary packet
    const len = (obj as { byteLength?: number }).byteLength ?? 0;
    p.bytes += len;
    p.remaining--;
    if (!p.dropping && p.bytes > p.limit) {
      p.dropping = true;
      this.destroy(); // drops the attachments received so far
    }
    if (p.remaining === 0) this.pending = null;
    if (p.dropping) {
      if (p.remaining === 0) this.refuse(p.head, p.bytes, p.limit);
      return;
    }
    super.add(obj);
  }

  /** Hand the event on without its payload (events only: an oversize ack packet is dropped). */
  private refuse(head: Header, size: number, limit: number): void {
    if (head.type !== parser.PacketType.EVENT && head.type !== parser.PacketType.BINARY_EVENT) return;
    const event = head.event ?? '';
    const marker = { [MARK]: true as const, tooLarge: true as const, event, size, limit };
    this.emitReserved('decoded', { type: parser.PacketType.EVENT, nsp: head.nsp, ...(head.id !== undefined ? { id: head.id } : {}), data: [event, marker] });
  }
}

/** What `limitedParser` returns (named, so that its declaration can be emitted for dist/). */
export interface LimitedParser {
  protocol: number;
  PacketType: typeof parser.PacketType;
  Encoder: typeof parser.Encoder;
  Decoder: new () => LimitedDecoder;
}

/** The `parser` option of the socket.io Server: the stock encoder and the limited decoder. */
export function limitedParser(pre: PreAuthLimits): LimitedParser {
  return {
    protocol: parser.protocol,
    PacketType: parser.PacketType,
    Encoder: parser.Encoder,
    Decoder: class extends LimitedDecoder {
      constructor() {
        super(pre);
      }
    },
  };
}

/** The connection's decoder (socket.io keeps it on the engine client); throws if the server was built without `limitedParser`. */
export function decoderOf(socket: DeviceSocket): LimitedDecoder {
  const d = (socket.client as unknown as { decoder?: unknown }).decoder;
  if (!(d instanceof LimitedDecoder)) throw new Error('socket.io server was built without limitedParser()');
  return d;
}
