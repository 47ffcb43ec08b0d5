import { readFileSync, readdirSync } from "node:fs";
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import type { Database } from "better-sqlite3";
import { KappaError, messageOf } from "../errors.js";

/** One migration: its scope (`kappa` or `processor`), position and SQL. */
export interface Migration {
  scope: "kappa" | "processor";
  index: number;
  name: string;
  sql: string;
}

const MIGRATIONS_DIR = fileURLToPath(new URL("../../migrations/", import.meta.url));
let kappaMigrations: Migration[] | undefined;

/** Kappa's own migrations: the numbered SQL files in `migrations/`. */
export function loadKappaMigrations(): Migration[] {
  kappaMigrations ??= readdirSync(MIGRATIONS_DIR)
    .filter((f) => /^\d+_.*\.sql$/.test(f))
    .sort()
    .map((f) => ({ scope: "kappa" as const, index: Number(f.split("_")[0]), name: f, sql: readFileSync(MIGRATIONS_DIR + f, "utf8") }));
  return kappaMigrations;
}

/** A migration failed: the version cannot be built with this code. */
export class MigrationError extends KappaError {
  constructor(m: Migration, cause: unknown) {
    super("MIGRATION_FAILED", `${m.scope === "kappa" ? "Kappa migration" : "schema migration"} ${m.name} failed: ${messageOf(cause)}`, {
      hint: m.scope === "processor" ? "fix the processor's schema and deploy it again; the live version is untouched" : "this view file is damaged: retire the version and replay it",
      cause,
    });
    this.name = "MigrationError";
  }
}

/** Applies every migration not yet recorded, each in its own transaction; a changed, already-applied migration is an error. */
export function migrate(db: Database, migrations: Migration[]): void {
  db.exec("CREATE TABLE IF NOT EXISTS kappa_migrations (scope TEXT NOT NULL, idx INTEGER NOT NULL, name TEXT NOT NULL, checksum TEXT NOT NULL, PRIMARY KEY (scope, idx))");
  const applied = new Map<string, string>();
  for (const r of db.prepare("SELECT scope, idx, checksum FROM kappa_migrations").all() as { scope: string; idx: number; checksum: string }[]) {
    applied.set(`${r.scope}/${r.idx}`, r.checksum);
  }
  const record = db.prepare("INSERT INTO kappa_migrations (scope, idx, name, checksum) VALUES (?, ?, ?, ?)");
  for (const m of migrations) {
    const sum = createHash("sha256").update(m.sql).digest("hex");
    const prev = applied.get(`${m.scope}/${m.index}`);
    if (prev !== undefined) {
      if (prev !== sum) throw new MigrationError(m, new Error("it was changed after being applied to this view file"));
      continue;
    }
    try {
      db.transaction(() => {
        db.exec(m.sql);
        record.run(m.scope, m.index, m.name, sum);
      })();
    } catch (err) {
      throw new MigrationError(m, err);
    }
  }
}

/** The processor's `schema` list as migrations. */
export function processorMigrations(schema: readonly string[]): Migration[] {
  return schema.map((sql, i) => ({ scope: "processor" as const, index: i + 1, name: `schema[${i}]`, sql }));
}
