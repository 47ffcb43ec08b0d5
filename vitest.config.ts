import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    // Integration suites each start their own nats-server; two at a time suits a 2-core machine.
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    include: ["test/**/*.test.ts"],
  },
});
