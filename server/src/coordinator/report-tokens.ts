import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { AppError } from '../errors.js';

/** What an upload token binds (docs/protocol.md, "Report upload"). */
export interface ReportClaims {
  /** task */
  t: string;
  /** round */
  r: number;
  /** device */
  d: string;
  /** base version the device trains from */
  v: number;
}

/**
 * The upload tokens of one round. A token is `base64url(JSON claims) "." base64url(HMAC-SHA256)`
 * under a random key made when the round opens; a cluster leader hands the key to the followers
 * with the round (cluster/messages.ts, `open`), so the node a device is connected to can check the
 * tokens the leader issued. Contracts: `check` accepts only a token issued under this key for
 * exactly these claims; `use` succeeds once per token (single use, whatever the outcome of the
 * upload that used it).
 */
export class ReportTokens {
  private readonly used = new Set<string>();

  constructor(readonly key: Buffer = randomBytes(32)) {}

  issue(claims: ReportClaims): string {
    const body = Buffer.from(JSON.stringify({ t: claims.t, r: claims.r, d: claims.d, v: claims.v })).toString('base64url');
    return `${body}.${this.mac(body).toString('base64url')}`;
  }

  /** Throws FL_ERR_REPORT_TOKEN_INVALID unless `token` was issued under this key. */
  check(token: string): void {
    const [body, mac] = token.split('.');
    const want = this.mac(body ?? '');
    const got = Buffer.from(mac ?? '', 'base64url');
    if (got.length !== want.length || !timingSafeEqual(got, want)) throw new AppError('FL_ERR_REPORT_TOKEN_INVALID', { why: 'signature' });
  }

  /** Marks `token` used; FL_ERR_REPORT_TOKEN_USED when it was already. */
  use(token: string): void {
    if (this.used.has(token)) throw new AppError('FL_ERR_REPORT_TOKEN_USED');
    this.used.add(token);
  }

  private mac(body: string): Buffer {
    return createHmac('sha256', this.key).update(body).digest();
  }
}

const MAX_TOKEN = 512;

/** The claims a token names (not yet checked: `ReportTokens.check` does that); FL_ERR_REPORT_TOKEN_INVALID when malformed. */
export function readClaims(token: string): ReportClaims {
  const bad = () => new AppError('FL_ERR_REPORT_TOKEN_INVALID', { why: 'malformed' });
  if (token.length > MAX_TOKEN || !/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token)) throw bad();
  let c: unknown;
  try {
    c = JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString('utf8'));
  } catch {
    throw bad();
  }
  const o = c as Partial<ReportClaims> | null;
  if (!o || typeof o.t !== 'string' || typeof o.d !== 'string' || !Number.isInteger(o.r) || !Number.isInteger(o.v)) throw bad();
  return { t: o.t, r: o.r!, d: o.d, v: o.v! };
}
