import type { QueryPool } from "../../views/index.js";
import type { CliContext } from "../context.js";
import type { CheckpointReader } from "./checkpoints.js";
import type { LiveCatalog } from "./liveCatalog.js";
import type { QueryLimits } from "./params.js";
import type { SseHub } from "./sse.js";
import type { ViewsSnapshot } from "./snapshot.js";

/** What the route files share: one of each per server. */
export interface ServerDeps {
  ctx: CliContext;
  catalog: LiveCatalog;
  checkpoints: CheckpointReader;
  pool: QueryPool;
  hub: SseHub;
  limits: QueryLimits;
  /** How often change streams read the live version's checkpoint. */
  pollMs: number;
  /** How often the status stream looks for a change. */
  statusIntervalMs: number;
  /** The current state of every view. */
  snapshot: () => ViewsSnapshot;
  /** Cleanups to run when the server closes. */
  onClose: (fn: () => void) => void;
}
