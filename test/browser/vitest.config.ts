// `npm run test:browser`: the demo page in Debian's Chromium (kept out of `vitest run`, which takes test/**/*.test.ts).
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  root: fileURLToPath(new URL('../..', import.meta.url)),
  test: {
    include: ['test/browser/**/*.e2e.ts'],
    testTimeout: 600_000,
    hookTimeout: 120_000,
  },
});
