import { describe, it, expect } from "vitest";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { TestEnv } from "./support/env.js";
import { cliContext } from "./support/cli.js";
import { runAppend } from "../src/cli/commands/append.js";

describe("append --file skips blank lines", () => {
  it("also lines of Unicode whitespace only (no-break space, BOM), as the streamed path for large files does", async () => {
    await using env = await TestEnv.start();
    const file = join(env.dir, "blank.ndjson");
    writeFileSync(file, ['{"type":"a","data":{"n":1}}', "\u00a0", "\ufeff ", "", '{"type":"a","data":{"n":2}}', ""].join("\n"));
    const ctx = cliContext(env);
    try {
      const r = await runAppend(ctx, undefined, undefined, { file });
      expect([r.count, r.stored]).toEqual([2, 2]);
    } finally {
      await ctx.close();
    }
  });
});
