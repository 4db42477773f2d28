import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { argSafeRandomText, generateToken, tokenIdOf } from '../../server/src/auth/tokens.js';
import { loadOrCreateSecret } from '../../server/src/secret-file.js';

/**
 * Generated ids and secrets are typed into command lines (`flotilla token revoke <id>`,
 * `--token <secret>`), where a leading '-' reads as an option: CI once drew a token id "-a..."
 * and the CLI refused it. With base64url, 1 draw in 64 began with '-', so thousands of draws
 * without one make the old behaviour fail this test with certainty for any practical purpose.
 */
describe('generated ids and secrets', () => {
  it('never begin with "-", and tokens keep their format', () => {
    for (let i = 0; i < 4000; i++) {
      const t = generateToken();
      expect(t.id[0]).not.toBe('-');
      expect(t.token.split('.')[2][0]).not.toBe('-');
      expect(tokenIdOf(t.token)).toBe(t.id);
      expect(argSafeRandomText(24)[0]).not.toBe('-');
    }
  });

  it('every first character other than "-" still occurs', () => {
    const firsts = new Set<string>();
    for (let i = 0; i < 20_000; i++) firsts.add(argSafeRandomText(9)[0]);
    expect(firsts.size).toBe(63);
  });

  it('a secret file created on first start holds one too', () => {
    for (let i = 0; i < 300; i++) {
      const dir = mkdtempSync(join(tmpdir(), 'flotilla-secret-'));
      const s = loadOrCreateSecret(dir, 'admin-token');
      expect(s.created).toBe(true);
      expect(s.token[0]).not.toBe('-');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
