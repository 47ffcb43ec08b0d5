import { existsSync } from "node:fs";
import { resolve, extname, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { InputError } from "../errors.js";
import { bundleEsm } from "./esmBundle.js";

const KAPPA_ENTRY = fileURLToPath(new URL("../index.ts", import.meta.url));

/** Processor code ready to store: a single ESM bundle, or a SQL processor's text. */
export interface Bundle {
  kind: "js" | "sql";
  text: string;
}

/** Bundles a processor module (TypeScript or JavaScript) into one ESM file; `.sql` files are taken as they are. */
export async function bundleProcessor(modulePath: string): Promise<Bundle> {
  const path = resolve(modulePath);
  if (!existsSync(path)) throw new InputError(`processor module ${modulePath} not found`, { hint: "pass the path of a .ts, .js or .sql file" });
  if (extname(path) === ".sql") {
    const { readFileSync } = await import("node:fs");
    return { kind: "sql", text: readFileSync(path, "utf8") };
  }
  try {
    const text = await bundleEsm(path, {
      // Paths in the bundle's comments are relative to this, so the hash does not depend on the caller's cwd.
      absWorkingDir: dirname(path),
      alias: { kappa: KAPPA_ENTRY },
      external: ["better-sqlite3"],
    });
    return { kind: "js", text };
  } catch (err) {
    const e = err as { errors?: { text: string; location?: { file: string; line: number } }[]; message?: string };
    const first = e.errors?.[0];
    const where = first?.location ? `${first.location.file}:${first.location.line}: ` : "";
    throw new InputError(`cannot bundle ${modulePath}: ${where}${first?.text ?? e.message}`, { hint: "fix the module so it compiles, then deploy again", cause: err });
  }
}
