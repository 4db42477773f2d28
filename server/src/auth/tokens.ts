import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Token format: `flt.<id>.<secret>`, id = 9 random bytes, secret = 32 random bytes (base64url).
 * The id is public (listed, used to revoke); the store keeps only sha256(token).
 *
 * Why a plain sha256 and not bcrypt/scrypt: those slow hashes protect low-entropy human passwords
 * against offline guessing. A 256-bit random secret cannot be guessed at any hash speed, so a fast
 * hash loses nothing, and it keeps verification cheap on every request and every device hello.
 */
export const TOKEN_PREFIX = 'flt';
const TOKEN_RE = /^flt\.([A-Za-z0-9_-]{12})\.([A-Za-z0-9_-]{43})$/;

export interface NewToken {
  id: string;
  token: string;
  hash: string;
}

export function generateToken(): NewToken {
  const id = randomBytes(9).toString('base64url');
  const token = `${TOKEN_PREFIX}.${id}.${randomBytes(32).toString('base64url')}`;
  return { id, token, hash: hashToken(token) };
}

/** Hex sha256 of the whole token string. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** The id of a well-formed token, else null. */
export function tokenIdOf(token: string): string | null {
  const m = TOKEN_RE.exec(token);
  return m ? m[1] : null;
}

/** Constant-time equality of two hex digests of the same length (false when lengths differ). */
export function digestsEqual(aHex: string, bHex: string): boolean {
  const a = Buffer.from(aHex, 'hex');
  const b = Buffer.from(bHex, 'hex');
  return a.length === b.length && a.length > 0 && timingSafeEqual(a, b);
}

/** Constant-time check of a presented secret against an expected one (both hashed first, so lengths never leak). */
export function secretMatches(presented: string, expected: string): boolean {
  const a = createHash('sha256').update(presented).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}
