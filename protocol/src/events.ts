import type { SecAggDown } from './secagg/messages.js';
import type { FitUpload } from './report-upload.js';
import type { Ack, EvalInstruction, FitInstruction, RoundCancel, SessionMessage, TaskStateMessage } from './messages.js';

/**
 * Typed socket.io event maps, used as `Server<ClientToServerEvents, ServerToClientEvents>` and
 * `Socket<ServerToClientEvents, ClientToServerEvents>`. Payload types are the *input* side: the
 * receiver still validates with the schemas in messages.ts.
 */
export interface ClientToServerEvents {
  heartbeat: (msg: unknown, ack: (a: Ack<{ serverTime: number }>) => void) => void;
  'fit:ready': (msg: unknown, ack: (a: Ack) => void) => void;
  'fit:report': (msg: unknown, ack: (a: Ack) => void) => void;
  'fit:failure': (msg: unknown, ack: (a: Ack) => void) => void;
  'eval:report': (msg: unknown, ack: (a: Ack) => void) => void;
  /** Secure aggregation: keys, encrypted shares, unmasking shares (docs/protocol.md, "Secure aggregation"). */
  secagg: (msg: unknown, ack: (a: Ack) => void) => void;
  /** Secure aggregation: the masked input, after an ok fit:ready (instead of fit:report). */
  'secagg:masked': (msg: unknown, ack: (a: Ack) => void) => void;
}

export interface ServerToClientEvents {
  /** Once per connection, right after the handshake was accepted. */
  session: (msg: SessionMessage) => void;
  'fit:instruction': (msg: FitInstruction) => void;
  /** Right after fit:instruction when the round takes HTTP uploads (report-upload.ts); older devices ignore it. */
  'fit:upload': (msg: FitUpload) => void;
  'eval:instruction': (msg: EvalInstruction) => void;
  'round:cancel': (msg: RoundCancel) => void;
  'task:state': (msg: TaskStateMessage) => void;
  secagg: (msg: SecAggDown) => void;
}

export const CLIENT_EVENTS = ['heartbeat', 'fit:ready', 'fit:report', 'fit:failure', 'eval:report', 'secagg', 'secagg:masked'] as const;
export type ClientEventName = (typeof CLIENT_EVENTS)[number];
