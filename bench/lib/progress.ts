/** Progress lines on stderr (a bar on a terminal, a line every 2 s in a log) with rate and ETA. */
import cliProgress from "cli-progress";

/** One stage's progress: `update(done)` as work completes, `stop()` at the end. */
export class Progress {
  readonly #bar: cliProgress.SingleBar;
  readonly #t0 = performance.now();

  constructor(label: string, total: number) {
    this.#bar = new cliProgress.SingleBar(
      {
        format: `  ${label.padEnd(14)} {bar} {percentage}% | {value}/{total} | {rate}/s | ETA {eta_formatted}`,
        noTTYOutput: true,
        notTTYSchedule: 2000,
        etaBuffer: 50,
        hideCursor: false,
        clearOnComplete: false,
      },
      cliProgress.Presets.shades_classic,
    );
    this.#bar.start(total, 0, { rate: "0" });
  }

  update(done: number): void {
    const s = (performance.now() - this.#t0) / 1000;
    this.#bar.update(done, { rate: s > 0 ? Math.round(done / s).toLocaleString("en-US") : "0" });
  }

  stop(): void {
    this.#bar.stop();
  }
}
