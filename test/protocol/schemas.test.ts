import { describe, expect, it } from 'vitest';
import { FitReportSchema, HandshakeAuthSchema, TaskPlanSchema, effectiveMinReports } from '@flotilla/protocol';

describe('protocol schemas', () => {
  it('fills plan defaults and rejects inconsistent plans', () => {
    const p = TaskPlanSchema.parse({ clientsPerRound: 10 });
    expect(p.overSelect).toBe(1.3);
    expect(p.epochs).toBe(1);
    expect(p.batchSize).toBe(10);
    expect(effectiveMinReports(p)).toBe(5);
    expect(TaskPlanSchema.safeParse({ clientsPerRound: 2, minReports: 3 }).success).toBe(false);
    expect(TaskPlanSchema.safeParse({ clientsPerRound: 2, unknown: 1 }).success).toBe(false);
    expect(TaskPlanSchema.safeParse({ clientsPerRound: 0 }).success).toBe(false);
  });

  it('takes binary deltas only, never number arrays', () => {
    const base = { taskId: 't', round: 1, numExamples: 1, metrics: {}, codec: 'f32' };
    expect(FitReportSchema.safeParse({ ...base, delta: new Uint8Array(4) }).success).toBe(true);
    expect(FitReportSchema.safeParse({ ...base, delta: new ArrayBuffer(4) }).success).toBe(true);
    expect(FitReportSchema.safeParse({ ...base, delta: [1, 2, 3] }).success).toBe(false);
    expect(FitReportSchema.safeParse({ ...base, delta: new Uint8Array(4), metrics: { loss: Infinity } }).success).toBe(false);
  });

  it('rejects ids with odd characters', () => {
    expect(HandshakeAuthSchema.safeParse({ protocolVersion: 2, token: 'x', taskId: 'a b' }).success).toBe(false);
    expect(HandshakeAuthSchema.safeParse({ protocolVersion: 2, token: 'x', taskId: 'a'.repeat(200) }).success).toBe(false);
  });
});
