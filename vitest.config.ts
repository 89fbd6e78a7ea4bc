import { defineConfig } from 'vitest/config';

// Tests import the compiled library from dist/ only through the CLI end-to-end
// runs; unit tests import the TypeScript sources directly.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
