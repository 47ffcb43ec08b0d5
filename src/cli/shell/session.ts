import { InputError, KappaError } from "../../errors.js";
import { Catalog, MAX_VIEWS, QueryPool, queryViews, readCatalogCache, type RecordSource, type ViewRef, type ViewsAnswer } from "../../views/index.js";
import type { CliContext } from "../context.js";
import { recordSource } from "../records.js";

/** One table or view of an attached view file, under its processor's name. */
export interface ShellTable {
  schema: string;
  name: string;
  sql: string;
}

/**
 * What a shell talks to: the views it attaches (one processor, or every processor with a live version),
 * a query process, and the tables they hold. Every statement resolves the live versions anew, so the
 * shell follows promotions; everything runs through the read-only query path.
 */
export class ShellSession {
  readonly pool: QueryPool;
  readonly records: RecordSource;
  #views: ViewRef[] = [];
  #tables: ShellTable[] = [];

  private constructor(readonly ctx: CliContext, readonly processor: string | undefined, readonly timeoutMs: number) {
    this.pool = new QueryPool({ size: 1, warm: true });
    this.records = recordSource(ctx);
  }

  /** Opens a session on one processor, or on every processor that has a live version. */
  static async open(ctx: CliContext, processor: string | undefined, timeoutMs: number): Promise<ShellSession> {
    const s = new ShellSession(ctx, processor, timeoutMs);
    try {
      await s.refresh();
    } catch (err) {
      await s.close();
      throw err;
    }
    return s;
  }

  /** The views attached to every statement. */
  get views(): ViewRef[] {
    return this.#views;
  }

  /** Tables known at the last refresh (for completion and `.tables`). */
  get tables(): ShellTable[] {
    return this.#tables;
  }

  /** Re-reads which processors are live and what tables they hold. */
  async refresh(): Promise<void> {
    if (this.processor) {
      this.#views = [{ processor: this.processor }];
    } else {
      const all = (await this.#liveNames()).filter((n) => n !== "main" && n !== "temp");
      const names = all.slice(0, MAX_VIEWS);
      if (all.length > names.length) process.stderr.write(`note: ${all.length} live views; the shell attaches the first ${MAX_VIEWS} (${names.join(", ")}) — open another with \`kappa shell <processor>\`\n`);
      if (names.length === 0) throw new KappaError("NO_LIVE_VERSION", "no processor has a live version yet", { hint: "deploy one with `kappa deploy <module>`, or open a processor's shell: `kappa shell <processor>`" });
      this.#views = names.map((processor) => ({ processor }));
    }
    const union = this.#views
      .map((v) => `SELECT '${v.processor}' AS schema, name, sql FROM "${v.processor}".sqlite_schema WHERE type IN ('table', 'view') AND name NOT LIKE 'kappa\\_%' ESCAPE '\\' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'`)
      .join(" UNION ALL ");
    const a = await this.run(`${union} ORDER BY 1, 2`);
    this.#tables = a.rows.map((r) => ({ schema: String(r.schema), name: String(r.name), sql: String(r.sql ?? "") }));
  }

  async #liveNames(): Promise<string[]> {
    try {
      const nc = await this.ctx.nats({ timeoutMs: 1000 });
      const cat = await Catalog.open(nc, this.ctx.spec.stream);
      return (await cat.list()).filter((r) => r.live !== null).map((r) => r.name);
    } catch {
      return (readCatalogCache(this.ctx.dataDir.catalogCache)?.records ?? []).filter((r) => r.live !== null).map((r) => r.name);
    }
  }

  /** Runs one read-only statement over the session's views. */
  run(sql: string, limit = 10_000): Promise<ViewsAnswer> {
    if (!sql.trim()) throw new InputError("empty statement");
    return queryViews(this.ctx.dataDir, this.records, this.pool, { views: this.#views, sql, timeoutMs: this.timeoutMs, limit });
  }

  /** Each view's live version, checkpoint and state. */
  async versions(): Promise<{ processor: string; version: number | null; seq: number | null; state: string }[]> {
    const out = [];
    for (const v of this.#views) {
      const rec = await this.records(v.processor);
      const live = rec?.live ?? null;
      let seq: number | null = null;
      if (live !== null) {
        const a = await queryViews(this.ctx.dataDir, this.records, this.pool, { views: [v], sql: "SELECT 1", timeoutMs: this.timeoutMs }).catch(() => null);
        seq = a?.views[0]?.seq ?? null;
      }
      out.push({ processor: v.processor, version: live, seq, state: live !== null ? (rec!.versions[String(live)]?.state ?? "?") : "no live version" });
    }
    return out;
  }

  async close(): Promise<void> {
    await this.pool.close();
    await this.ctx.close();
  }
}
