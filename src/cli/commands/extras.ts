import type { Command } from "commander";

/** Commands added by later parts (serve, verify, diff, dlq). */
export function registerExtras(_program: Command): void {}
