import * as z from 'zod';

/** Names of the client-side optimizers a plan may ask for. */
export const ClientOptimizerSchema = z.enum(['sgd', 'momentum', 'adam']);
export const CodecNameSchema = z.enum(['f32', 'f16', 'int8', 'topk']);
/**
 * Losses a plan may name: TensorFlow.js's built-in loss names (tf.LayersModel.compile takes
 * these strings). Which labels each expects is in docs/models.md.
 */
export const LossNameSchema = z.enum([
  'categoricalCrossentropy',
  'sparseCategoricalCrossentropy',
  'binaryCrossentropy',
  'meanSquaredError',
  'meanAbsoluteError',
  'huberLoss',
  'logLoss',
  'hinge',
  'categoricalHinge',
  'squaredHinge',
  'kullbackLeiblerDivergence',
  'poisson',
  'cosineProximity',
  'meanSquaredLogarithmicError',
  'meanAbsolutePercentageError',
]);
export type LossName = z.infer<typeof LossNameSchema>;
/** Metrics a plan may name (accuracy for classifiers; mae/mse for regression). */
export const MetricNameSchema = z.enum(['accuracy', 'binaryAccuracy', 'categoricalAccuracy', 'mae', 'mse', 'precision', 'recall']);
export type MetricName = z.infer<typeof MetricNameSchema>;

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
    /** The loss devices minimise and the metrics they report (defaults: the classifier's). */
    loss: LossNameSchema.default('categoricalCrossentropy'),
    metrics: z.array(MetricNameSchema).max(8).default(['accuracy']),
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
    /** The loss devices minimise; checked against the model's output at task creation. */
    loss: LossNameSchema.default('categoricalCrossentropy'),
    /** Metrics devices report beside the loss; absent: accuracy for classification losses, mae for regression ones. */
    metrics: z.array(MetricNameSchema).max(8).optional(),
    /**
     * Names of the top-level layers that train; every other layer is frozen (its weights never
     * change and never travel). Absent: the layers the model marks trainable. Fixed at creation.
     */
    trainableLayers: z.array(z.string().min(1).max(256)).min(1).max(10000).optional(),
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
    loss: p.loss,
    metrics: effectiveMetrics(p),
  };
  if (p.topkFraction !== undefined) c.topkFraction = p.topkFraction;
  return c;
}

/** Losses of real-valued targets; the rest compare class scores with labels. */
const REGRESSION_LOSSES: ReadonlySet<LossName> = new Set([
  'meanSquaredError',
  'meanAbsoluteError',
  'huberLoss',
  'meanSquaredLogarithmicError',
  'meanAbsolutePercentageError',
  'poisson',
  'cosineProximity',
]);
const ACCURACY_METRICS: ReadonlySet<MetricName> = new Set(['accuracy', 'binaryAccuracy', 'categoricalAccuracy', 'precision', 'recall']);

export function isRegressionLoss(loss: LossName): boolean {
  return REGRESSION_LOSSES.has(loss);
}

export function effectiveMetrics(p: Pick<TaskPlan, 'loss' | 'metrics'>): MetricName[] {
  return p.metrics ?? (isRegressionLoss(p.loss) ? ['mae'] : ['accuracy']);
}

/**
 * Why a plan's loss and metrics do not fit a model with `outputs` values per example, or null.
 * Softmax losses need at least two outputs; accuracy-like metrics need a classification loss.
 */
export function lossMismatch(p: Pick<TaskPlan, 'loss' | 'metrics'>, outputs: number): string | null {
  const softmax = p.loss === 'categoricalCrossentropy' || p.loss === 'sparseCategoricalCrossentropy' || p.loss === 'categoricalHinge';
  if (softmax && outputs < 2) return `${p.loss} needs a model with at least 2 outputs (this one has ${outputs}); use binaryCrossentropy or a regression loss`;
  if (isRegressionLoss(p.loss)) {
    const bad = effectiveMetrics(p).filter((m) => ACCURACY_METRICS.has(m));
    if (bad.length) return `metrics ${bad.join(', ')} need a classification loss; ${p.loss} is a regression loss (use mae or mse)`;
  }
  return null;
}
