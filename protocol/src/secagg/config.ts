import * as z from 'zod';

/**
 * Secure aggregation in a task plan (`plan.secureAggregation`) and on the wire. The protocol and
 * its threat model are described in docs/secure-aggregation.md; the server checks the parts the
 * schema cannot (threshold against the graph, strategy, codec) in
 * server/src/coordinator/secagg/secagg-plan.ts.
 */
export const SecAggQuantizationSchema = z
  .object({
    /** Bits per coordinate of one device's quantized vector (sign included). */
    bits: z.number().int().min(2).max(24).default(16),
    /** Each coordinate of the (weighted) delta is clamped to [-clipRange, clipRange] before quantization. */
    clipRange: z.number().positive().max(1e6),
  })
  .strict();

export const SecAggDistributedDpSchema = z
  .object({
    /** Devices clip their delta to this L2 norm. */
    clipNorm: z.number().positive(),
    /** Noise multiplier z of the sum: each device adds N(0, (z clipNorm)^2 / threshold) per coordinate. */
    noiseMultiplier: z.number().min(0).max(1000),
    targetDelta: z.number().gt(0).lt(1).default(1e-5),
  })
  .strict();

export const SecureAggregationSchema = z
  .object({
    protocol: z.enum(['secagg', 'secagg+']),
    /** Shares needed to rebuild one device's secrets; also the fewest devices a round can finish with. */
    threshold: z.number().int().min(2).max(65535),
    /** SecAgg+ only: neighbours per device (even; default 2 ceil(log2 n)). */
    neighbours: z.number().int().min(2).max(65534).optional(),
    quantization: SecAggQuantizationSchema,
    /** Example count at which a report's weight saturates: weight = min(1, numExamples / maxWeight). */
    maxWeight: z.number().int().min(1).max(1e9).default(1000),
    /** Training metrics (loss, accuracy...) are clamped to [-metricRange, metricRange] before masking. */
    metricRange: z.number().positive().max(1e6).default(100),
    /** Deadline of each key-exchange phase and of unmasking (masked input is due by the round deadline). */
    phaseTimeoutMs: z.number().int().min(10).max(3_600_000).default(30_000),
    /** Distributed DP: client-side clipping and noise (unweighted mean). */
    distributedDp: SecAggDistributedDpSchema.optional(),
  })
  .strict();
export type SecureAggregation = z.infer<typeof SecureAggregationSchema>;

/** What a device needs of it, inside its fit instruction's plan. */
export const SecAggClientSchema = z
  .object({
    protocol: z.enum(['secagg', 'secagg+']),
    bits: z.number().int().min(2).max(24),
    clipRange: z.number().positive(),
    maxWeight: z.number().int().min(1),
    metricRange: z.number().positive(),
    /** The metrics masked beside the delta, in order (each weighted like the delta). */
    metricNames: z.array(z.string().min(1).max(64)).max(16),
    /** Distributed DP: L2 clip norm and the standard deviation of the noise each device adds per coordinate. */
    dp: z.object({ clipNorm: z.number().positive(), noiseStd: z.number().min(0) }).strict().optional(),
  })
  .strict();
export type SecAggClientConfig = z.infer<typeof SecAggClientSchema>;
