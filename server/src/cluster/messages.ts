import { z } from 'zod';

/**
 * Messages between cluster nodes on the Redis channel `fl:cluster` (JSON). Nodes trust each
 * other (they share the store), but every message is still parsed once here, at the boundary, so a
 * malformed one is dropped and logged instead of reaching a runner.
 */
const Base = { from: z.string().min(1) };
export const ClusterMessageSchema = z.discriminatedUnion('t', [
  /**
   * The leader opened a round; the record and plan are what followers need to validate reports,
   * `uploadKey` (base64) what they need to check the round's upload tokens (coordinator/report-tokens.ts).
   */
  z.object({ t: z.literal('open'), ...Base, task: z.string(), fence: z.number(), record: z.record(z.string(), z.unknown()), plan: z.record(z.string(), z.unknown()), uploadKey: z.string().max(64).optional() }),
  z.object({ t: z.literal('reported'), ...Base, task: z.string(), round: z.number(), device: z.string(), bytes: z.number() }),
  z.object({ t: z.literal('gone'), ...Base, task: z.string(), device: z.string(), reason: z.string(), grace: z.boolean() }),
  /** The leader closes a round: every node answers with `partial` (has: false when it took no report). */
  z.object({ t: z.literal('close'), ...Base, task: z.string(), round: z.number() }),
  z.object({ t: z.literal('partial'), ...Base, task: z.string(), round: z.number(), has: z.boolean(), bytes: z.number() }),
  z.object({ t: z.literal('end'), ...Base, task: z.string(), round: z.number(), state: z.enum(['done', 'failed']), reason: z.string().optional() }),
  z.object({ t: z.literal('eval'), ...Base, task: z.string(), device: z.string(), report: z.unknown() }),
  z.object({ t: z.literal('join'), ...Base, task: z.string(), device: z.string() }),
  z.object({ t: z.literal('leave'), ...Base, task: z.string(), device: z.string() }),
  /** A task record changed in the store (created, state, plan): nodes re-read it. */
  z.object({ t: z.literal('task'), ...Base, task: z.string() }),
  /** Something serving caches depend on changed (version, alias, deployment): nodes re-sync. */
  z.object({ t: z.literal('serving'), ...Base, what: z.string() }),
]);
export type ClusterMessage = z.infer<typeof ClusterMessageSchema>;
export type Outgoing = ClusterMessage extends infer M ? (M extends { from: string } ? Omit<M, 'from'> : never) : never;
export const CHANNEL = 'fl:cluster';
