import { AppError } from '../errors.js';
import type { AliasRecord, DeploymentRecord, VersionRecord } from '../store/records.js';
import type { AliasSnapshot, RegistrySource } from './registry-source.js';
import type { UpstreamClient } from './upstream-client.js';

const enc = encodeURIComponent;

/**
 * The registry of a coordinator over its REST API (docs/api.md), read with a `serving` (or
 * viewer/admin) token. Alias listings are polled with If-None-Match: an unchanged model costs a
 * 304 and no body. See registry-source.ts for the contract.
 */
export class HttpRegistrySource implements RegistrySource {
  readonly describe: string;

  constructor(private readonly client: UpstreamClient) {
    this.describe = client.baseUrl;
  }

  async listModels(): Promise<string[]> {
    const r = await this.client.json<{ models: Array<{ name: string }> }>('GET', '/api/v1/models');
    return r.models.map((m) => m.name);
  }

  async aliases(model: string, etag?: string): Promise<AliasSnapshot | null> {
    const res = await this.client.request('GET', `/api/v1/models/${enc(model)}/aliases`, { headers: etag ? { 'if-none-match': etag } : {} });
    if (res.status === 304) return null;
    let body: { aliases?: AliasRecord[] };
    try {
      body = JSON.parse(Buffer.from(res.body).toString('utf8'));
    } catch {
      body = {};
    }
    if (!Array.isArray(body.aliases)) throw new AppError('FL_ERR_UPSTREAM_BAD_RESPONSE', { upstream: this.describe, model, why: 'no alias list' });
    return { aliases: body.aliases, etag: res.headers.get('etag') ?? '' };
  }

  async version(model: string, version: number): Promise<VersionRecord> {
    const { links: _l, aliases: _a, ...record } = await this.client.json<VersionRecord & { links: unknown; aliases: unknown }>('GET', `/api/v1/models/${enc(model)}/versions/${version}`);
    return record as VersionRecord;
  }

  async artifact(record: VersionRecord, name: string): Promise<Uint8Array> {
    return (await this.client.request('GET', `/api/v1/models/${enc(record.model)}/versions/${record.version}/artifacts/${enc(name)}`, { headers: { accept: 'application/octet-stream' } })).body;
  }

  async deployments(): Promise<DeploymentRecord[]> {
    return (await this.client.json<{ deployments: DeploymentRecord[] }>('GET', '/api/v1/deployments')).deployments;
  }

  async close(): Promise<void> {}
}
