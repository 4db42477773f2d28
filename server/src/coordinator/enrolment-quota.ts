/**
 * How many device ids each credential has enrolled (docs/api.md, "Devices": `maxDevicesPerToken`).
 * `ClientActivity.enrol` asks `take` before it creates the record of a device id it has no record
 * of; the count starts from the credential's records in the store and then follows the ids taken.
 *
 * Contract (every implementation passes test/cluster/enrolment-quota.test.ts):
 *  - `take(key, id, cap, stored)` resolves true when `id` was already taken under `key` since the
 *    last recount (counting nothing more), or when fewer than `cap` are counted (then `id` counts
 *    one more); false, counting nothing, otherwise. Concurrent takes never overshoot `cap`.
 *    `stored` reads the store's count and is called only when the count of `key` is not known
 *    (first use, or after `recount`).
 *  - `recount()` forgets every count (records were deleted); the next take re-reads the store.
 *  - A disconnect frees nothing: an enrolment lasts as long as its record.
 * The cap is an abuse bound, not an exact quota: an implementation may count an id whose record
 * never reached the store (a crash within the write-behind interval) until its next recount.
 */
export interface EnrolmentQuota {
  take(key: string, id: string, cap: number, stored: () => Promise<number>): Promise<boolean>;
  recount(): Promise<void>;
}

/** One coordinator: the counts in this process's memory (the default outside cluster mode). */
export class LocalEnrolmentQuota implements EnrolmentQuota {
  private readonly counts = new Map<string, { stored: number; taken: Set<string> }>();

  async take(key: string, id: string, cap: number, stored: () => Promise<number>): Promise<boolean> {
    if (!this.counts.has(key)) {
      const n = await stored();
      if (!this.counts.has(key)) this.counts.set(key, { stored: n, taken: new Set() });
    }
    const c = this.counts.get(key)!; // no await between this check and the change below
    if (c.taken.has(id)) return true;
    if (c.stored + c.taken.size >= cap) return false;
    c.taken.add(id);
    return true;
  }

  async recount(): Promise<void> {
    this.counts.clear();
  }
}
