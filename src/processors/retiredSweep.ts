import { existsSync } from "node:fs";
import { messageOf } from "../errors.js";
import { deleteUnread, hasLeaseFile, type DataDir, type ProcessorRecord } from "../views/index.js";

/**
 * Deletes the files of retired versions once no query holds them (see views/leases.ts). A query that
 * resolved a version before it was retired finishes on it; the file goes when that reader is done.
 */
export class RetiredSweep {
  /** Versions whose deletion a reader holds up: said once, not on every sweep. */
  readonly #waitingForReaders = new Set<string>();

  constructor(
    private readonly dataDir: DataDir,
    private readonly log: (line: string) => void,
  ) {}

  /** One pass over every known record; `running` tells a version that still has a runner here (its file stays). */
  sweep(records: Iterable<ProcessorRecord>, running: (key: string) => boolean): void {
    for (const rec of records) {
      for (const v of Object.values(rec.versions)) {
        const key = `${rec.name}/${v.version}`;
        if (v.state !== "retired" || running(key)) continue;
        const file = this.dataDir.viewFile(rec.name, v.version);
        const dir = this.dataDir.viewsOf(rec.name);
        if (!existsSync(file) && !hasLeaseFile(dir, v.version)) continue;
        try {
          if (deleteUnread(dir, v.version, [file, `${file}-wal`, `${file}-shm`])) {
            this.#waitingForReaders.delete(key);
            this.log(`${key}: retired, file deleted`);
          } else if (!this.#waitingForReaders.has(key)) {
            this.#waitingForReaders.add(key);
            this.log(`${key}: retired; a query still reads it — the file goes when it is done`);
          }
        } catch (err) {
          this.log(`${key}: cannot delete the retired file yet: ${messageOf(err)}`);
        }
      }
    }
  }
}
