import { join, resolve } from "node:path";
import { InputError } from "../errors.js";

const NAME = /^[a-z0-9_]{1,64}$/;

/** Checks a processor name: [a-z0-9_], 1–64 characters, so it is safe in paths, subjects and KV keys. */
export function validateProcessorName(name: string): string {
  if (!NAME.test(name)) {
    throw new InputError(`"${name}" is not a valid processor name`, {
      hint: "use 1–64 lowercase letters, digits and _ (for example orders_by_user)",
      code: "BAD_NAME",
    });
  }
  return name;
}

/** Parses a version number given by a user (`3` or `v3`). */
export function parseVersion(text: string | number): number {
  const t = String(text).replace(/^v/, "");
  const n = Number(t);
  if (!/^\d+$/.test(t) || !Number.isSafeInteger(n) || n < 1) {
    throw new InputError(`"${text}" is not a valid version`, { hint: "versions are positive integers, as shown by `kappa status`", code: "BAD_VERSION" });
  }
  return n;
}

/** Where Kappa keeps its derived files under a data directory. */
export class DataDir {
  readonly root: string;
  constructor(root: string) {
    this.root = resolve(root);
  }
  /** The directory of one processor's view files. */
  viewsOf(processor: string): string {
    return join(this.root, "views", validateProcessorName(processor));
  }
  /** The SQLite file of one view version. */
  viewFile(processor: string, version: number): string {
    return join(this.viewsOf(processor), `v${parseVersion(version)}.sqlite`);
  }
  /** Cached code bundles, by hash. */
  codeFile(hash: string, kind: "js" | "sql"): string {
    if (!/^[a-f0-9]{64}$/.test(hash)) throw new InputError(`"${hash}" is not a code hash`);
    return join(this.root, "code", `${hash}.${kind === "js" ? "mjs" : "sql"}`);
  }
  /** The local copy of the catalog, so queries work while NATS is unreachable. */
  get catalogCache(): string {
    return join(this.root, "catalog.json");
  }
  /** The URL of the embedded server that `kappa dev` started. */
  get natsUrlFile(): string {
    return join(this.root, "nats.url");
  }
  /** The embedded server's JetStream store. */
  get natsStore(): string {
    return join(this.root, "nats");
  }
  /** The lock file that keeps a second worker (or a second `kappa dev`) off this data dir. */
  get workerLock(): string {
    return join(this.root, "worker.lock.sqlite");
  }
}
