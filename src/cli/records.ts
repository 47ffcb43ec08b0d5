import { UnavailableError, messageOf } from "../errors.js";
import { Catalog, notDeployed, readCatalogCache, validateProcessorName, type RecordSource } from "../views/index.js";
import type { CliContext } from "./context.js";

/**
 * Processor records from the catalog, or from the data dir's copy when NATS does not answer (queries
 * keep working in an outage). A name that is not deployed gets "did you mean"; with neither NATS nor a
 * copy, the error says to start `kappa dev` rather than that nothing is deployed.
 */
export function recordSource(ctx: CliContext, onFallback?: (why: string) => void): RecordSource {
  let catalog: Promise<Catalog | null> | undefined;
  let openError = "";
  const open = () =>
    (catalog ??= ctx
      .nats({ timeoutMs: 1000 })
      .then((nc) => Catalog.open(nc, ctx.spec.stream))
      .catch((err: unknown) => {
        openError = messageOf(err);
        onFallback?.(openError);
        return null;
      }));
  return async (name) => {
    validateProcessorName(name);
    const cat = await open();
    let why = openError;
    if (cat) {
      try {
        const rec = (await cat.get(name))?.record;
        if (rec) return rec;
        throw notDeployed(name, await cat.names().catch(() => []));
      } catch (err) {
        if ((err as { code?: string }).code === "NOT_FOUND") throw err;
        why = messageOf(err);
        onFallback?.(why);
      }
    }
    const copy = readCatalogCache(ctx.dataDir.catalogCache);
    if (!copy) {
      throw new UnavailableError("NATS_UNREACHABLE", `NATS is not reachable at ${ctx.natsUrl}${why ? ` (${why.replace(/^cannot reach NATS at \S+: /, "")})` : ""}, and ${ctx.dataDir.root} has no copy of the catalog`, {
        hint: "start `npx kappa dev` in another terminal (or pass --nats <url> of a running server, and the --data-dir the worker uses)",
      });
    }
    const rec = copy.records.find((r) => r.name === name);
    if (!rec) throw notDeployed(name, copy.records.map((r) => r.name));
    return rec;
  };
}
