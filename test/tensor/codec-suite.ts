import { describe, expect, it } from 'vitest';
import { AppError, type ErrorCode } from '@flotilla/protocol';
import { CODEC_IDS, HEADER_BYTES, type CodecName, type CodecOptions, type DeltaCodec } from '@flotilla/protocol';
import { createRng } from '../../server/src/fl/rng.js';

/**
 * The shared codec suite (codec.ts contract): every codec from listCodecs() runs it. What differs
 * per codec is stated in its SuiteSpec: the documented encoded size, a cap that keeps the
 * documented error bound honest (a codec claiming Infinity would otherwise pass), and what it
 * does with NaN/Infinity.
 */
export interface SuiteSpec {
  /** Option sets to run every check under. */
  optionSets: CodecOptions[];
  /** Documented encoded size for n floats. */
  bytes(n: number, options: CodecOptions): number;
  /** The documented bound, recomputed independently; maxAbsError must not exceed it. */
  boundCap(x: Float32Array, options: CodecOptions): number;
  /** 'preserve': decode yields the non-finite value; 'reject': encode throws FL_ERR_REPORT_NON_FINITE. */
  nonFinite: 'preserve' | 'reject';
}

function maxAbs(x: Float32Array, from = 0, to = x.length): number {
  let m = 0;
  for (let i = from; i < Math.min(to, x.length); i++) m = Math.max(m, Math.abs(x[i]));
  return m;
}

/** Seeded generator for reproducible test vectors (the FL core's mulberry32). */
export const seeded = createRng;

export const SUITE_SPECS: Record<CodecName, SuiteSpec> = {
  f32: {
    optionSets: [{}],
    bytes: (n) => 12 + 4 * n,
    boundCap: () => 0,
    nonFinite: 'preserve',
  },
  f16: {
    optionSets: [{}],
    bytes: (n) => 12 + 2 * n,
    boundCap: (x) => Math.max(2 ** -25, maxAbs(x) * 2 ** -11),
    nonFinite: 'preserve',
  },
  int8: {
    optionSets: [{}, { blockSize: 3 }, { blockSize: 64, random: seeded(7) }],
    bytes: (n, o) => 12 + 8 * Math.ceil(n / (o.blockSize ?? 256)) + n,
    boundCap: (x, o) => {
      const bs = o.blockSize ?? 256;
      let cap = 0;
      for (let s = 0; s < x.length; s += bs) {
        let lo = Infinity;
        let hi = -Infinity;
        for (let i = s; i < Math.min(x.length, s + bs); i++) {
          lo = Math.min(lo, x[i]);
          hi = Math.max(hi, x[i]);
        }
        cap = Math.max(cap, ((o.random ? 1 : 0.5) * (hi - lo) * (1 + 1e-6)) / 255 + maxAbs(x, s, s + bs) * 2 ** -23);
      }
      return cap;
    },
    nonFinite: 'reject',
  },
  topk: {
    optionSets: [{ fraction: 0.01 }, { fraction: 0.3 }, { fraction: 1 }],
    bytes: (n, o) => 16 + 8 * (n === 0 ? 0 : Math.min(n, Math.max(1, Math.ceil((o.fraction ?? 0.01) * n - 1e-9)))),
    boundCap: (x) => maxAbs(x),
    nonFinite: 'reject',
  },
};

function expectCode(fn: () => unknown, code: ErrorCode): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected ${code}`).toBeInstanceOf(AppError);
  expect((caught as AppError).code).toBe(code);
}

function vectors(): Array<{ label: string; x: Float32Array }> {
  const rng = seeded(42);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
  const out: Array<{ label: string; x: Float32Array }> = [];
  for (const n of [0, 1, 2, 7, 255, 256, 257, 1000, 4099]) {
    for (const scale of [1e-3, 1, 100]) out.push({ label: `gauss n=${n} scale=${scale}`, x: Float32Array.from({ length: n }, () => scale * gauss()) });
  }
  out.push({ label: 'zeros', x: new Float32Array(300) });
  out.push({ label: 'constant', x: new Float32Array(300).fill(-0.75) });
  out.push({ label: 'alternating', x: Float32Array.from({ length: 301 }, (_, i) => (i % 2 ? 1 : -1) * (1 + i / 301)) });
  const spike = new Float32Array(513);
  spike[200] = 1e3;
  out.push({ label: 'spike', x: spike });
  return out;
}

export function codecSuite(codec: DeltaCodec, spec: SuiteSpec, others: readonly DeltaCodec[]): void {
  describe(`codec ${codec.name} (shared suite)`, () => {
    for (const options of spec.optionSets) {
      const tag = JSON.stringify({ ...options, random: options.random ? 'seeded' : undefined });
      it(`round trip within maxAbsError, documented size, header ${tag}`, () => {
        for (const { label, x } of vectors()) {
          const copy = x.slice();
          const bytes = codec.encode(x, options);
          expect(x, `${label}: input not mutated`).toEqual(copy);
          expect(bytes.byteLength, `${label}: size`).toBe(spec.bytes(x.length, options));
          expect(Array.from(bytes.subarray(0, 4))).toEqual([0x46, 0x4c, 0x44, CODEC_IDS[codec.name]]);
          expect(new DataView(bytes.buffer, bytes.byteOffset).getUint32(4, true)).toBe(x.length);
          const y = codec.decode(bytes, x.length);
          expect(y).toBeInstanceOf(Float32Array);
          expect(y.length).toBe(x.length);
          const bound = codec.maxAbsError(x, options);
          expect(bound, `${label}: bound honest`).toBeLessThanOrEqual(spec.boundCap(x, options));
          let err = 0;
          for (let i = 0; i < x.length; i++) err = Math.max(err, Math.abs(y[i] - x[i]));
          expect(err, `${label}: error ${err} > bound ${bound}`).toBeLessThanOrEqual(bound);
        }
      });

      it(`decoded vector owns its memory ${tag}`, () => {
        const x = Float32Array.from({ length: 64 }, (_, i) => i - 20);
        const bytes = codec.encode(x, options);
        const y = codec.decode(bytes, x.length);
        const before = y.slice();
        bytes.fill(0, HEADER_BYTES);
        expect(y).toEqual(before);
      });
    }

    it('is deterministic without a random source', () => {
      const x = Float32Array.from({ length: 777 }, (_, i) => Math.sin(i) * 3);
      const o = { ...spec.optionSets[0], random: undefined };
      expect(codec.encode(x, o)).toEqual(codec.encode(x, o));
    });

    it('rejects truncated, padded and malformed bytes with FL_ERR_CODEC_CORRUPT', () => {
      const x = Float32Array.from({ length: 100 }, (_, i) => Math.cos(i));
      const bytes = codec.encode(x, spec.optionSets[0]);
      for (const cut of [1, 2, 4, 8]) expectCode(() => codec.decode(bytes.slice(0, bytes.byteLength - cut), 100), 'FL_ERR_CODEC_CORRUPT');
      const padded = new Uint8Array(bytes.byteLength + 1);
      padded.set(bytes);
      expectCode(() => codec.decode(padded, 100), 'FL_ERR_CODEC_CORRUPT');
      expectCode(() => codec.decode(bytes.slice(0, 5), 100), 'FL_ERR_CODEC_CORRUPT');
      expectCode(() => codec.decode(new Uint8Array(0), 100), 'FL_ERR_CODEC_CORRUPT');
      const badMagic = bytes.slice();
      badMagic[0] = 0x00;
      expectCode(() => codec.decode(badMagic, 100), 'FL_ERR_CODEC_CORRUPT');
    });

    it('rejects an unknown codec id, another codec, and a wrong length', () => {
      const x = Float32Array.from({ length: 50 }, (_, i) => i / 7);
      const bytes = codec.encode(x, spec.optionSets[0]);
      const unknown = bytes.slice();
      unknown[3] = 0x7f;
      expectCode(() => codec.decode(unknown, 50), 'FL_ERR_CODEC_UNKNOWN');
      expectCode(() => codec.decode(bytes, 51), 'FL_ERR_REPORT_SHAPE_MISMATCH');
      expectCode(() => codec.decode(bytes, 49), 'FL_ERR_REPORT_SHAPE_MISMATCH');
      for (const other of others) {
        if (other.name === codec.name) continue;
        expectCode(() => codec.decode(other.encode(x), 50), 'FL_ERR_REPORT_WRONG_CODEC');
      }
    });

    it(`handles NaN and Infinity as documented (${spec.nonFinite})`, () => {
      for (const bad of [NaN, Infinity, -Infinity]) {
        const x = Float32Array.from([1, bad, -2, 0.5]);
        if (spec.nonFinite === 'reject') {
          expectCode(() => codec.encode(x, spec.optionSets[0]), 'FL_ERR_REPORT_NON_FINITE');
        } else {
          const y = codec.decode(codec.encode(x, spec.optionSets[0]), 4);
          if (Number.isNaN(bad)) expect(Number.isNaN(y[1])).toBe(true);
          else expect(y[1]).toBe(bad);
          expect([y[0], y[2], y[3]]).toEqual([1, -2, 0.5]);
        }
      }
    });
  });
}
