import { messageOf } from "../errors.js";
import { Catalog, readCatalogCache, validateProcessorName, type RecordSource } from "../views/index.js";
import type { CliContext } from "./context.js";

/** Processor records from the catalog, or from the data dir's copy when NATS does not answer (queries keep working in an outage). */
export function recordSource(ctx: CliContext, onFallback?: (why: string) => void): RecordSource {
  let catalog: Promise<Catalog | null> | undefined;
  const open = () =>
    (catalog ??= ctx
      .nats({ timeoutMs: 1000 })
      .then((nc) => Catalog.open(nc, ctx.spec.stream))
      .catch((err: unknown) => {
        onFallback?.(messageOf(err));
        return null;
      }));
  return async (name) => {
    validateProcessorName(name);
    const cat = await open();
    if (cat) {
      try {
        return (await cat.get(name))?.record ?? null;
      } catch (err) {
        onFallback?.(messageOf(err));
      }
    }
    return readCatalogCache(ctx.dataDir.catalogCache)?.records.find((r) => r.name === name) ?? null;
  };
}
