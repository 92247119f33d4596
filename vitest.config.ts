import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['**/*.test.ts'],
    exclude: ['node_modules/**', 'dist/**'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Two cores here: forks keep native modules (better-sqlite3) isolated per worker.
    pool: 'forks',
    reporters: ['default', './test/summary-reporter.ts'],
  },
});
