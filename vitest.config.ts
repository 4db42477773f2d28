import { defaultServerConditions } from 'vite';
import { defineConfig } from 'vitest/config';

// Tests import the @flotilla/* workspace packages from their TypeScript sources (the
// `@flotilla/source` export condition), so they never depend on a stale dist/; the pack test
// (test/package/pack.test.ts) is the one that runs the compiled, packed output.
const conditions = ['@flotilla/source', ...defaultServerConditions];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Two cores: tfjs training tests compete for CPU; keep file parallelism modest.
    maxWorkers: 2,
    pool: 'forks',
  },
});
