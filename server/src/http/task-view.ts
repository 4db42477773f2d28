import type { TaskRecord } from '../store/records.js';

/** Public JSON view of a task: everything but the model topology (served by the registry). */
export function taskView(t: TaskRecord, connectedDevices: number) {
  return {
    id: t.id,
    modelName: t.modelName,
    state: t.state,
    stateReason: t.stateReason ?? null,
    plan: t.plan,
    currentVersion: t.currentVersion,
    nextRound: t.nextRound,
    parameters: t.spec.manifest.reduce((n, w) => n + w.size, 0),
    inputShape: t.spec.inputShape,
    numClasses: t.spec.numClasses,
    connectedDevices,
    createdAt: t.createdAt,
    updatedAt: t.updatedAt,
  };
}
