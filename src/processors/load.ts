import { pathToFileURL } from "node:url";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { KappaError, messageOf } from "../errors.js";
import { writeAtomicallyText as writeAtomically } from "../views/files.js";
import type { StoredCode } from "./codeStore.js";
import { validateDefinition } from "./validate.js";
import { parseSqlProcessor } from "./sqlProcessor.js";
import type { ProcessorDefinition } from "./define.js";

const loaded = new Map<string, ProcessorDefinition>();

/** Turns stored code into a processor definition: imports a JS bundle, parses a SQL processor. Cached by hash. */
export async function loadProcessor(code: StoredCode, cacheDir?: string, origin?: string): Promise<ProcessorDefinition> {
  const hit = loaded.get(code.hash);
  if (hit) return hit;
  let def: ProcessorDefinition;
  if (code.kind === "sql") {
    def = parseSqlProcessor(code.text, origin ?? `code ${code.hash.slice(0, 12)}.sql`);
  } else {
    const file = join(cacheDir ?? join(tmpdir(), "kappa-code"), `${code.hash}.mjs`);
    writeAtomically(file, code.text);
    let mod: { default?: unknown };
    try {
      mod = (await import(pathToFileURL(file).href)) as { default?: unknown };
    } catch (err) {
      throw new KappaError("CODE_LOAD_FAILED", `${origin ?? `processor code ${code.hash.slice(0, 12)}`} failed to load: ${messageOf(err)}`, {
        hint: "fix the module's top-level code and deploy again",
        cause: err,
      });
    }
    // The file's name when the deploy recorded it: "orders.ts has no default export", not a hash.
    def = validateDefinition(mod.default, origin ?? `code ${code.hash.slice(0, 12)}`);
  }
  loaded.set(code.hash, def);
  return def;
}
