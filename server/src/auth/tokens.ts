import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Token format: `flt.<id>.<secret>`, id = 9 random bytes, secret = 32 random bytes (base64url,
 * never beginning with '-': see `argSafeRandomText`). The id is public (listed, used to revoke:
 * `flotilla token revoke <id>`); the store keeps only sha256(token).
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

/**
 * base64url text of `bytes` random bytes that never begins with '-'. Ids and secrets are typed
 * into command lines, where a leading '-' reads as an option (`flotilla token revoke -aB...` was
 * refused as "Unknown option '-a'", 1 id in 64). Redrawing keeps every other first character
 * equally likely; the entropy lost is under 0.03 bits.
 */
export function argSafeRandomText(bytes: number): string {
  for (;;) {
    const text = randomBytes(bytes).toString('base64url');
    if (!text.startsWith('-')) return text;
  }
}

export function generateToken(): NewToken {
  const id = argSafeRandomText(9);
  const token = `${TOKEN_PREFIX}.${id}.${argSafeRandomText(32)}`;
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
