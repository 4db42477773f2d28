import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_REGISTRY } from '@flotilla/server';

/** docs/errors.md lists exactly the registry's codes, with their HTTP status and message. */
describe('docs/errors.md', () => {
  it('is in step with ERROR_REGISTRY (regenerate: node --import ./scripts/dev-loader.mjs server/src/cli/errors-doc.ts > docs/errors.md)', () => {
    const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
    const rows = new Map<string, { status: number; message: string }>();
    for (const m of doc.matchAll(/^\| `(FL_ERR_[A-Z0-9_]+)` \| (\d{3}) \| (.*) \|$/gm)) {
      expect(rows.has(m[1]), `${m[1]} listed twice`).toBe(false);
      rows.set(m[1], { status: Number(m[2]), message: m[3].replace(/\\\|/g, '|') });
    }
    const registry = Object.entries(ERROR_REGISTRY);
    expect([...rows.keys()].sort()).toEqual(registry.map(([c]) => c).sort());
    for (const [code, e] of registry) expect(rows.get(code), code).toEqual({ status: e.status, message: e.message });
  });
});
