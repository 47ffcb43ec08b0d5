import { InputError } from "../errors.js";
import { validateTypeFilter } from "../log/subjects.js";
import { validateProcessorName } from "../views/paths.js";
import type { ProcessorDefinition } from "./define.js";

/** Checks that a module's default export is a usable processor definition, naming every problem it finds. */
export function validateDefinition(value: unknown, origin: string): ProcessorDefinition {
  const problems: string[] = [];
  const def = value as Partial<ProcessorDefinition> | undefined;
  if (!def || typeof def !== "object") {
    throw new InputError(`${origin} has no default export that is a processor`, {
      hint: "export default { name, schema, apply } (or defineProcessor({...}))",
      code: "BAD_PROCESSOR",
    });
  }
  if (typeof def.name !== "string") problems.push("`name` is missing");
  else {
    try {
      validateProcessorName(def.name);
    } catch (err) {
      problems.push((err as Error).message + " (use [a-z0-9_])");
    }
  }
  if (!Array.isArray(def.schema) || !def.schema.every((s) => typeof s === "string")) problems.push("`schema` must be a list of SQL strings");
  const hasApply = typeof def.apply === "function";
  const hasOn = def.on !== undefined && typeof def.on === "object" && Object.values(def.on).every((h) => typeof h === "function");
  if (!hasApply && !hasOn) problems.push("give `apply(event, ctx)` or `on: { \"type\": handler }`");
  if (hasApply && def.on !== undefined) problems.push("give `apply` or `on`, not both");
  if (def.subjects !== undefined) {
    if (!Array.isArray(def.subjects) || def.subjects.length === 0) problems.push("`subjects` must be a non-empty list of event-type filters");
    else for (const s of def.subjects) {
      try {
        validateTypeFilter(String(s));
      } catch (err) {
        problems.push((err as Error).message);
      }
    }
  }
  if (def.onError !== undefined && def.onError !== "halt" && def.onError !== "skip") problems.push('`onError` must be "halt" or "skip"');
  if (def.queries !== undefined && (typeof def.queries !== "object" || !Object.values(def.queries).every((q) => typeof q === "string"))) {
    problems.push("`queries` must map names to SQL strings");
  }
  if (def.upcasters !== undefined) {
    const ok = typeof def.upcasters === "object" && def.upcasters !== null && Object.values(def.upcasters).every((c) => Array.isArray(c) && c.every((f) => typeof f === "function"));
    if (!ok) problems.push("`upcasters` must map event types to lists of functions `(data, event) => data`, one per schema version step");
  }
  if (def.source !== undefined) {
    try {
      validateProcessorName(String(def.source));
    } catch {
      problems.push("`source` must name another processor");
    }
  }
  if (problems.length > 0) {
    throw new InputError(`${origin} is not a valid processor: ${problems.join("; ")}`, { hint: "see the README, section \"Writing a processor\"", code: "BAD_PROCESSOR" });
  }
  return def as ProcessorDefinition;
}

/** The subjects a definition reads: its declared filters, or all when none. */
export function subjectsOf(def: ProcessorDefinition): string[] {
  return def.subjects && def.subjects.length > 0 ? [...def.subjects] : [];
}
