import * as z from 'zod';

/** Names of the client-side optimizers a plan may ask for. */
export const ClientOptimizerSchema = z.enum(['sgd', 'momentum', 'adam']);
export const CodecNameSchema = z.enum(['f32', 'f16', 'int8', 'topk']);

/**
 * What a device needs to run its local work: sent inside every fit instruction. Derived from the
 * task plan; devices never see server-only fields.
 */
export const ClientPlanSchema = z
  .object({
    epochs: z.number().int().min(1).max(1000),
    batchSize: z.number().int().min(1).max(65536),
    learningRate: z.number().positive().max(100),
    optimizer: ClientOptimizerSchema,
    codec: CodecNameSchema,
    /** FedProx proximal coefficient; 0 disables. */
    proximalMu: z.number().min(0).max(100).default(0),
    /** topk fraction when codec is topk. */
    topkFraction: z.number().gt(0).lte(1).optional(),
    /** DP with client-side clipping: clip the delta to this L2 norm before encoding. */
    clipNorm: z.number().positive().optional(),
  })
  .strict();
export type ClientPlan = z.infer<typeof ClientPlanSchema>;

/**
 * A task's plan: how rounds are run. Validated once at the boundary (REST, CLI, config); the
 * coordinator trusts it. Defaults follow Bonawitz et al. 2019 (overSelect 1.3) and McMahan et
 * al. 2017 (E=1, B=10).
 */
export const TaskPlanSchema = z
  .object({
    clientsPerRound: z.number().int().min(1).max(100000),
    overSelect: z.number().min(1).max(10).default(1.3),
    /** Minimum reports for a round to commit at its deadline. Defaults to half the target, at least 1. */
    minReports: z.number().int().min(1).optional(),
    roundDeadlineMs: z.number().int().min(10).max(86_400_000).default(60_000),
    /** Connected eligible devices needed before a round starts; defaults to clientsPerRound. */
    minAvailable: z.number().int().min(1).optional(),
    epochs: z.number().int().min(1).max(1000).default(1),
    batchSize: z.number().int().min(1).max(65536).default(10),
    learningRate: z.number().positive().max(100).default(0.1),
    optimizer: ClientOptimizerSchema.default('sgd'),
    codec: CodecNameSchema.default('f32'),
    proximalMu: z.number().min(0).max(100).default(0),
    topkFraction: z.number().gt(0).lte(1).optional(),
    maxRounds: z.number().int().min(1).max(1_000_000).default(100),
    /** The task finishes when central (or, lacking it, federated) accuracy reaches this. */
    targetAccuracy: z.number().gt(0).lte(1).optional(),
    /** Devices asked to evaluate each committed version on local held-out data; 0 disables. */
    evalClientsPerRound: z.number().int().min(0).max(100000).default(0),
    /**
     * Largest example count one report may weigh with: a report claiming more is clamped to this
     * (it still counts, with this weight). Absent: the claim is used as sent (at most 1e9).
     */
    maxExamplesPerReport: z.number().int().min(1).max(1e9).optional(),
    /** Largest encoded update accepted, in bytes. */
    maxUpdateBytes: z.number().int().min(1024).max(1 << 30).default(64 * 1024 * 1024),
    /** Aggregation strategy name and its parameters (validated by the strategy). */
    strategy: z
      .object({ name: z.string().min(1).max(64), params: z.record(z.string(), z.unknown()).default({}) })
      .strict()
      .default({ name: 'fedavg', params: {} }),
    /** Update screening by L2 norm (server/src/fl/screening.ts validates the options at task creation). */
    screening: z.record(z.string(), z.unknown()).optional(),
    /** Seed for selection; random when absent. */
    seed: z.number().int().optional(),
  })
  .strict()
  .refine((p) => p.minReports === undefined || p.minReports <= p.clientsPerRound, {
    message: 'minReports must not exceed clientsPerRound',
    path: ['minReports'],
  });
export type TaskPlan = z.infer<typeof TaskPlanSchema>;
export type TaskPlanInput = z.input<typeof TaskPlanSchema>;

/** Resolved numbers the round machine uses; defaults filled in. */
export function effectiveMinReports(p: TaskPlan): number {
  return p.minReports ?? Math.max(1, Math.ceil(p.clientsPerRound / 2));
}
export function effectiveMinAvailable(p: TaskPlan): number {
  return p.minAvailable ?? p.clientsPerRound;
}

export function clientPlanOf(p: TaskPlan): ClientPlan {
  const c: ClientPlan = {
    epochs: p.epochs,
    batchSize: p.batchSize,
    learningRate: p.learningRate,
    optimizer: p.optimizer,
    codec: p.codec,
    proximalMu: p.proximalMu,
  };
  if (p.topkFraction !== undefined) c.topkFraction = p.topkFraction;
  return c;
}
