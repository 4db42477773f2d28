import type { UpstreamClient } from './upstream-client.js';

/**
 * Follows the coordinator's live channel (GET /api/v1/events, server-sent events) and calls
 * `onChange` on every `model` frame (a version published, an alias moved) and every `round`
 * frame, so that a replica or sidecar re-syncs at once instead of at its next poll. Polling stays
 * the source of truth: this only shortens the delay, reconnects after `retryMs` when the stream
 * ends, and never throws.
 */
export class LiveFollow {
  private readonly abort = new AbortController();
  connected = false;

  constructor(
    private readonly client: UpstreamClient,
    private readonly onChange: (model: string | null) => void,
    private readonly retryMs = 2000,
  ) {}

  start(): void {
    void this.loop();
  }

  close(): void {
    this.abort.abort();
  }

  private async loop(): Promise<void> {
    while (!this.abort.signal.aborted) {
      try {
        const body = await this.client.stream('/api/v1/events', this.abort.signal);
        this.connected = true;
        let buf = '';
        const decoder = new TextDecoder();
        for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
          buf += decoder.decode(chunk, { stream: true });
          let end: number;
          while ((end = buf.indexOf('\n\n')) >= 0) {
            const frame = buf.slice(0, end);
            buf = buf.slice(end + 2);
            const event = /^event: (.*)$/m.exec(frame)?.[1];
            if (event === 'model') {
              const data = /^data: (.*)$/m.exec(frame)?.[1];
              let model: string | null = null;
              try {
                model = data ? String(JSON.parse(data).model) : null;
              } catch {
                model = null;
              }
              this.onChange(model);
            } else if (event === 'round') this.onChange(null);
          }
        }
      } catch {
        // Unreachable or refused: polling carries on; try again later.
      }
      this.connected = false;
      if (this.abort.signal.aborted) return;
      await new Promise((r) => setTimeout(r, this.retryMs).unref());
    }
  }
}
