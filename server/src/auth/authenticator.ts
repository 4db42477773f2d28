import { AppError } from '../errors.js';
import type { TokenRecord, TokenRole } from '../store/records.js';
import type { Store } from '../store/store.js';
import { digestsEqual, generateToken, hashToken, secretMatches, tokenIdOf } from './tokens.js';

/** Who a request or a device hello is: the role its token grants. `tokenId` is null for the bootstrap tokens. */
export interface Principal {
  role: TokenRole;
  tokenId: string | null;
  /** Device tokens: the one task they may join (absent: the bootstrap device token, any task). */
  taskId?: string;
  /** Inference tokens: the deployments or models they may call (absent: every endpoint). */
  endpoints?: string[];
  name: string;
}

export interface AuthenticatorOptions {
  store: Store;
  /** Bootstrap admin token (FLOTILLA_ADMIN_TOKEN or <data-dir>/admin-token); never stored. */
  adminToken: string;
  /** Bootstrap device token, valid for every task (kept for simulators and tests); never stored. */
  deviceToken: string;
  now?: () => number;
}

export interface CreateTokenInput {
  role: TokenRole;
  taskId?: string;
  endpoints?: string[];
  name?: string;
  expiresAt?: number;
  createdBy: string;
}

/**
 * The one place credentials are checked. Bootstrap tokens are compared in constant time; stored
 * tokens are found by their public id and their sha256 compared in constant time, so neither a
 * wrong id nor a wrong secret answers faster than the other in a way that matters.
 */
export class Authenticator {
  private readonly now: () => number;

  constructor(private readonly opts: AuthenticatorOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** The principal of a bearer token, or null when it is unknown, expired or revoked. */
  async authenticate(token: string): Promise<Principal | null> {
    const admin = secretMatches(token, this.opts.adminToken);
    const device = secretMatches(token, this.opts.deviceToken);
    if (admin) return { role: 'admin', tokenId: null, name: 'bootstrap-admin' };
    if (device) return { role: 'device', tokenId: null, name: 'bootstrap-device' };
    const rec = await this.lookup(token);
    if (!rec) return null;
    return {
      role: rec.role,
      tokenId: rec.id,
      ...(rec.taskId ? { taskId: rec.taskId } : {}),
      ...(rec.endpoints ? { endpoints: rec.endpoints } : {}),
      name: rec.name ?? rec.id,
    };
  }

  /**
   * Device handshake: the token must be the bootstrap device token or a live device token scoped
   * to `taskId`. Every refusal is the same FL_ERR_AUTH_INVALID_TOKEN with no details, so the
   * answer never tells a valid admin or viewer token, or a device token of another task, from a
   * wrong one.
   */
  async authenticateDevice(token: string, taskId: string): Promise<{ tokenId: string | null }> {
    const p = await this.authenticate(token);
    if (!p || p.role !== 'device' || (p.taskId !== undefined && p.taskId !== taskId)) throw new AppError('FL_ERR_AUTH_INVALID_TOKEN');
    return { tokenId: p.tokenId };
  }

  /** Create and store a token; the returned secret is never retrievable again. */
  async createToken(input: CreateTokenInput): Promise<{ record: TokenRecord; token: string }> {
    if (input.role === 'device' && !input.taskId) throw new AppError('FL_ERR_HTTP_VALIDATION', { why: 'device tokens need a taskId' });
    if (input.role !== 'device' && input.taskId) throw new AppError('FL_ERR_HTTP_VALIDATION', { why: 'only device tokens are scoped to a task' });
    if (input.role !== 'inference' && input.endpoints) throw new AppError('FL_ERR_HTTP_VALIDATION', { why: 'only inference tokens are scoped to endpoints' });
    const t = generateToken();
    const record: TokenRecord = {
      id: t.id,
      hash: t.hash,
      role: input.role,
      createdAt: this.now(),
      createdBy: input.createdBy,
      revoked: false,
      ...(input.taskId ? { taskId: input.taskId } : {}),
      ...(input.endpoints ? { endpoints: [...new Set(input.endpoints)] } : {}),
      ...(input.name ? { name: input.name } : {}),
      ...(input.expiresAt !== undefined ? { expiresAt: input.expiresAt } : {}),
    };
    await this.opts.store.putToken(record);
    return { record, token: t.token };
  }

  private async lookup(token: string): Promise<TokenRecord | null> {
    const id = tokenIdOf(token);
    if (!id) return null;
    const rec = await this.opts.store.getToken(id);
    if (!rec || !digestsEqual(hashToken(token), rec.hash)) return null;
    if (rec.revoked || (rec.expiresAt !== undefined && rec.expiresAt <= this.now())) return null;
    return rec;
  }
}

/** The public view of a token record: never the hash. */
export function tokenView(t: TokenRecord) {
  return {
    id: t.id,
    role: t.role,
    taskId: t.taskId ?? null,
    endpoints: t.endpoints ?? null,
    name: t.name ?? null,
    createdAt: t.createdAt,
    createdBy: t.createdBy,
    expiresAt: t.expiresAt ?? null,
    revoked: t.revoked,
    revokedAt: t.revokedAt ?? null,
  };
}
