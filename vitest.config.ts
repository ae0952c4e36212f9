import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    // Two cores: integration suites spawn nats-server and redis-server of their own. `npm test` runs
    // test/browser (Chromium and a cluster per file) after the rest, so the two never compete.
    maxWorkers: 2,
    minWorkers: 1,
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
