import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // The native addon loads LibTorch: forks isolate it (and any crash) per test file.
    pool: 'forks',
    maxWorkers: 1,
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    include: ['test/**/*.test.ts'],
  },
});
