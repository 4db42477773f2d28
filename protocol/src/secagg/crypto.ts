/**
 * The cryptographic primitives of secure aggregation, on WebCrypto (`globalThis.crypto.subtle`)
 * alone, so that Node (20+) and browsers run the same code: X25519 key agreement, SHA-256 key
 * derivation, AES-256-GCM for shares in transit between two devices, and AES-256-CTR as the
 * pseudo-random generator that expands a 32-byte seed into a mask. Browsers expose
 * `crypto.subtle` only in secure contexts (HTTPS, or http://127.0.0.1 / localhost);
 * `assertWebCrypto` says so with a clear message elsewhere.
 */
export const KEY_BYTES = 32;
/** AES-GCM nonce + tag around a share pair. */
export const SEAL_OVERHEAD = 12 + 16;

/** X25519 private keys travel (as Shamir shares) in raw form; WebCrypto imports them as PKCS#8. */
const PKCS8_X25519_PREFIX = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20]);

export function assertWebCrypto(): SubtleCrypto {
  const s = globalThis.crypto?.subtle;
  if (!s) throw new Error('secure aggregation needs WebCrypto (crypto.subtle): serve the page over HTTPS or from localhost/127.0.0.1');
  return s;
}

export function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  globalThis.crypto.getRandomValues(out);
  return out;
}

export interface RawKeyPair {
  publicKey: Uint8Array;
  privateKey: Uint8Array;
}

/** A fresh X25519 key pair as raw 32-byte keys. */
export async function generateKeyPair(): Promise<RawKeyPair> {
  const s = assertWebCrypto();
  const kp = (await s.generateKey({ name: 'X25519' }, true, ['deriveBits'])) as CryptoKeyPair;
  const publicKey = new Uint8Array(await s.exportKey('raw', kp.publicKey));
  const pkcs8 = new Uint8Array(await s.exportKey('pkcs8', kp.privateKey));
  return { publicKey, privateKey: pkcs8.slice(pkcs8.length - KEY_BYTES) };
}

function buf(u: Uint8Array): ArrayBuffer {
  return u.buffer.slice(u.byteOffset, u.byteOffset + u.byteLength) as ArrayBuffer;
}

/** The X25519 shared secret of a raw private key and a raw public key, hashed with a label (32 bytes). */
export async function agree(privateKey: Uint8Array, publicKey: Uint8Array, label: string): Promise<Uint8Array> {
  const s = assertWebCrypto();
  if (privateKey.length !== KEY_BYTES || publicKey.length !== KEY_BYTES) throw new RangeError('X25519 keys are 32 bytes');
  const pkcs8 = new Uint8Array(PKCS8_X25519_PREFIX.length + KEY_BYTES);
  pkcs8.set(PKCS8_X25519_PREFIX);
  pkcs8.set(privateKey, PKCS8_X25519_PREFIX.length);
  const priv = await s.importKey('pkcs8', buf(pkcs8), { name: 'X25519' }, false, ['deriveBits']);
  const pub = await s.importKey('raw', buf(publicKey), { name: 'X25519' }, false, []);
  const shared = new Uint8Array(await s.deriveBits({ name: 'X25519', public: pub } as EcdhKeyDeriveParams, priv, 256));
  return sha256(concat(shared, new TextEncoder().encode(label)));
}

export async function sha256(data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await assertWebCrypto().digest('SHA-256', buf(data)));
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** AES-256-GCM with a random nonce: nonce || ciphertext || tag. `aad` binds the ciphertext to its sender, receiver and round. */
export async function seal(key: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Promise<Uint8Array> {
  const s = assertWebCrypto();
  const k = await s.importKey('raw', buf(key), { name: 'AES-GCM' }, false, ['encrypt']);
  const iv = randomBytes(12);
  const ct = new Uint8Array(await s.encrypt({ name: 'AES-GCM', iv: buf(iv), additionalData: buf(aad) }, k, buf(plaintext)));
  return concat(iv, ct);
}

/** Inverse of `seal`; throws when the ciphertext or its associated data was altered. */
export async function open(key: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Promise<Uint8Array> {
  const s = assertWebCrypto();
  const k = await s.importKey('raw', buf(key), { name: 'AES-GCM' }, false, ['decrypt']);
  const iv = sealed.subarray(0, 12);
  const pt = await s.decrypt({ name: 'AES-GCM', iv: buf(iv), additionalData: buf(aad) }, k, buf(sealed.subarray(12)));
  return new Uint8Array(pt);
}

/**
 * The pseudo-random mask of a 32-byte seed: `length` 32-bit words of AES-256-CTR keystream
 * (counter block starting at zero), read little-endian. Deterministic: the same seed gives the
 * same words in every runtime (the protocol test checks Node against the browser bundle).
 */
export async function expandMask(seed: Uint8Array, length: number): Promise<Uint32Array> {
  const s = assertWebCrypto();
  if (seed.length !== KEY_BYTES) throw new RangeError('mask seeds are 32 bytes');
  const k = await s.importKey('raw', buf(seed), { name: 'AES-CTR' }, false, ['encrypt']);
  const zeros = new Uint8Array(length * 4);
  const stream = new Uint8Array(await s.encrypt({ name: 'AES-CTR', counter: new Uint8Array(16), length: 64 }, k, zeros));
  const out = new Uint32Array(length);
  const view = new DataView(stream.buffer, stream.byteOffset, stream.byteLength);
  for (let i = 0; i < length; i++) out[i] = view.getUint32(i * 4, true);
  return out;
}
