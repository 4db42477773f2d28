import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Two cores: tfjs training tests compete for CPU; keep file parallelism modest.
    maxWorkers: 2,
    pool: 'forks',
  },
});
