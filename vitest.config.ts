import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['{core,sidecar,control-plane,cli,demo-services}/**/*.test.ts'],
          testTimeout: 10_000,
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          name: 'e2e',
          // Unit tests first (fast feedback), then the end-to-end files.
          sequence: { groupOrder: 1 },
          include: ['test/**/*.test.ts'],
          // End-to-end tests spawn real processes from dist/; they run a few files at a time on 2 cores.
          testTimeout: 60_000,
          hookTimeout: 60_000,
          maxWorkers: 2,
          fileParallelism: true,
        },
      },
    ],
  },
});
