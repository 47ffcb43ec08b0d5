import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import type { NatsConnection } from "@nats-io/nats-core";
import { Objm, type ObjectStore } from "@nats-io/obj";
import { KappaError, NotFoundError, messageOf } from "../errors.js";
import { replicasFor } from "../log/index.js";
import { writeAtomicallyText, type DataDir } from "../views/index.js";

/** Processor code as stored: its kind and its text. */
export interface StoredCode {
  hash: string;
  kind: "js" | "sql";
  text: string;
}

/** SHA-256 of code text, the address it is stored under. */
export function hashCode(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** The object store bucket's name for a stream. */
export function codeBucket(stream: string): string {
  return `${stream}_code`;
}

/** Deployed processor code in a JetStream object store, addressed by SHA-256, with a local cache under the data dir. */
export class CodeStore {
  private constructor(private readonly os: ObjectStore, private readonly dataDir: DataDir | undefined) {}

  /** Opens (creating if needed) the code bucket of a stream. */
  static async open(nc: NatsConnection, stream: string, dataDir?: DataDir, replicas?: number): Promise<CodeStore> {
    try {
      return new CodeStore(await new Objm(nc).create(codeBucket(stream), { replicas: await replicasFor(nc, stream, replicas) }), dataDir);
    } catch (err) {
      throw new KappaError("CODE_STORE_UNAVAILABLE", `cannot open the code bucket ${codeBucket(stream)}: ${messageOf(err)}`, { hint: "check that JetStream is enabled and reachable", cause: err });
    }
  }

  /** Stores code under its hash (a no-op when it is already there). */
  async put(kind: "js" | "sql", text: string): Promise<string> {
    const hash = hashCode(text);
    const name = `${hash}.${kind}`;
    if (!(await this.os.info(name))) await this.os.putBlob({ name }, new TextEncoder().encode(text));
    return hash;
  }

  /** Fetches code by hash: from the local cache when present, else from NATS (then cached). Verifies the hash either way. */
  async get(hash: string, kind: "js" | "sql"): Promise<StoredCode> {
    const cached = this.dataDir?.codeFile(hash, kind);
    if (cached && existsSync(cached)) {
      const text = readFileSync(cached, "utf8");
      if (hashCode(text) === hash) return { hash, kind, text };
    }
    const blob = await this.os.getBlob(`${hash}.${kind}`);
    if (!blob) throw new NotFoundError(`code ${hash.slice(0, 12)} is not in the code store`, { hint: "deploy the processor again with `kappa deploy`" });
    const text = new TextDecoder().decode(blob);
    if (hashCode(text) !== hash) throw new KappaError("CODE_CORRUPT", `code ${hash.slice(0, 12)} does not match its hash`, { hint: "deploy the processor again" });
    if (cached) writeAtomically(cached, text);
    return { hash, kind, text };
  }
}

/** Writes a file through a temporary name, so readers never see half of it. */
export const writeAtomically = writeAtomicallyText;
