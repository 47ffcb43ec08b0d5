import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    // Hang protection, not a speed target: e2e tests run the binary many times, and a loaded 2-core
    // machine can take several seconds per start. Speed is measured by bench/, never here.
    testTimeout: 180_000,
    hookTimeout: 120_000,
    pool: "forks",
    // Integration suites each start their own nats-server; two at a time suits a 2-core machine.
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    include: ["test/**/*.test.ts"],
  },
});
