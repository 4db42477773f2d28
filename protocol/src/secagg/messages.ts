import * as z from 'zod';
import { BytesSchema } from '../messages.js';

/** Secure-aggregation messages on the socket (docs/protocol.md, "Secure aggregation"). */
const Id = z.string().min(1).max(128);
const RoundNo = z.number().int().min(1).max(2 ** 31);
const Index = z.number().int().min(1).max(65535);

/**
 * Device -> coordinator, event `secagg`: its two public keys (`keys`: 64 bytes), its encrypted
 * shares in the order of its neighbour list (`shares`), or the shares it reveals for unmasking
 * (`unmask`: SHARE_BYTES each, in the order secagg-device.ts documents).
 */
export const SecAggUpSchema = z
  .object({ taskId: Id, round: RoundNo, phase: z.enum(['keys', 'shares', 'unmask']), data: BytesSchema })
  .strict();
export type SecAggUp = z.infer<typeof SecAggUpSchema>;

/** Device -> coordinator, event `secagg:masked`, after an ok `fit:ready`: the masked vector (uint32 little-endian). */
export const SecAggMaskedSchema = z.object({ taskId: Id, round: RoundNo, masked: BytesSchema }).strict();
export type SecAggMasked = z.infer<typeof SecAggMaskedSchema>;

/** Coordinator -> device, event `secagg`. */
export const SecAggDownSchema = z.discriminatedUnion('phase', [
  z
    .object({
      taskId: Id,
      round: RoundNo,
      phase: z.literal('neighbours'),
      /** This device's index (its Shamir point). */
      index: Index,
      threshold: z.number().int().min(1),
      /** Neighbour indices, ascending; `keys` holds their two public keys each (64 bytes), in the same order. */
      neighbours: z.array(Index).max(65535),
      keys: BytesSchema,
    })
    .strict(),
  z
    .object({
      taskId: Id,
      round: RoundNo,
      phase: z.literal('shares'),
      /** Neighbours whose encrypted shares follow (ascending), one sealed share pair each. */
      from: z.array(Index).max(65535),
      data: BytesSchema,
    })
    .strict(),
  z
    .object({
      taskId: Id,
      round: RoundNo,
      phase: z.literal('unmask'),
      /** Devices whose masked input is in the sum, and devices that shared but sent none. */
      survivors: z.array(Index).max(65535),
      dropped: z.array(Index).max(65535),
    })
    .strict(),
]);
export type SecAggDown = z.infer<typeof SecAggDownSchema>;
