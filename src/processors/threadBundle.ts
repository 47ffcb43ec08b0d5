import { existsSync, readFileSync } from "node:fs";
import { createRequire, isBuiltin } from "node:module";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Plugin } from "esbuild";
import { KappaError, messageOf } from "../errors.js";
import { writeAtomicallyText } from "../views/index.js";
import { hashCode } from "./codeStore.js";
import { bundleEsm } from "./esmBundle.js";

const ENTRIES = {
  "apply-thread": fileURLToPath(new URL("./applyThread.ts", import.meta.url)),
  "reader-thread": fileURLToPath(new URL("./readerThread.ts", import.meta.url)),
} as const;
type ThreadKind = keyof typeof ENTRIES;
const require = createRequire(import.meta.url);

/**
 * Each module keeps its own import.meta.url (migrations.ts finds migrations/ from it), and packages are
 * not bundled but imported from this installation's copy, by absolute path, so the file loads from anywhere.
 */
const keepLocations: Plugin = {
  name: "kappa-thread-locations",
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (a) => {
      if (a.path.startsWith("node:") || isBuiltin(a.path)) return { path: a.path, external: true };
      return { path: pathToFileURL(require.resolve(a.path, { paths: [a.resolveDir] })).href, external: true };
    });
    b.onLoad({ filter: /\.ts$/ }, (a) => ({
      contents: readFileSync(a.path, "utf8").replaceAll("import.meta.url", JSON.stringify(pathToFileURL(a.path).href)),
      loader: "ts",
    }));
  },
};

const built = new Map<ThreadKind, Promise<{ text: string; name: string }>>();

/**
 * The apply thread's program as one plain ES module in `dir` (bundled once per process, written again
 * when the directory was wiped). A worker thread does not inherit tsx's loader, and starting tsx in each
 * thread costs most of a second.
 */
export function applyThreadFile(dir: string): Promise<string> {
  return threadFile("apply-thread", dir);
}

/** The bulk reader thread's program (readerThread.ts), the same way. */
export function readerThreadFile(dir: string): Promise<string> {
  return threadFile("reader-thread", dir);
}

async function threadFile(kind: ThreadKind, dir: string): Promise<string> {
  let b = built.get(kind);
  if (!b) {
    built.set(kind, (b = bundle(kind)));
    b.catch(() => built.delete(kind));
  }
  const { text, name } = await b;
  const file = join(dir, name);
  if (!existsSync(file)) writeAtomicallyText(file, text);
  return file;
}

async function bundle(kind: ThreadKind): Promise<{ text: string; name: string }> {
  let text: string;
  try {
    text = await bundleEsm(ENTRIES[kind], { plugins: [keepLocations] });
  } catch (err) {
    throw new KappaError("THREAD_BUNDLE_FAILED", `cannot build the ${kind.replace("-", " ")}: ${messageOf(err)}`, { hint: "reinstall Kappa's dependencies (npm ci)", cause: err });
  }
  return { text, name: `${kind}-${hashCode(text).slice(0, 16)}.mjs` };
}
