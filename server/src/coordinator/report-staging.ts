/**
 * Reusable receive buffers for uploaded f32 reports (coordinator/report-upload.ts): an upload's
 * body is copied chunk by chunk into one buffer taken here, read in place by the fold, and the
 * buffer is given back for the next upload. So a report costs no new full-size allocation (the
 * socket path allocates one reassembled frame per report, which the garbage collector then has
 * to find). Contracts: `take(bytes)` returns a buffer of exactly `bytes` bytes, not in use by
 * anyone else, starting at offset 0 of its ArrayBuffer (so the f32 payload after the 12-byte
 * header is 4-byte aligned); `give` returns it; at most `keep` idle buffers are kept. One pool per
 * round (active-round.ts) with `keep` = the round's upload slots: uploads take a buffer only while
 * they hold a slot, so the pool never holds more than slots x update bytes.
 */
export class StagingPool {
  private free: Uint8Array<ArrayBuffer>[] = [];

  constructor(private readonly keep: number) {}

  take(bytes: number): Uint8Array<ArrayBuffer> {
    for (let i = this.free.length - 1; i >= 0; i--) {
      if (this.free[i].byteLength === bytes) return this.free.splice(i, 1)[0];
    }
    return new Uint8Array(new ArrayBuffer(bytes));
  }

  give(buf: Uint8Array<ArrayBuffer>): void {
    if (this.free.length < this.keep) this.free.push(buf);
  }
}
