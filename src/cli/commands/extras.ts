import type { Command } from "commander";
import { registerServe } from "./serve.js";

/** Commands added by later parts (serve, verify, diff, dlq). */
export function registerExtras(program: Command): void {
  registerServe(program);
}
