import type { FastifyInstance } from "fastify";
import { InputError } from "../../errors.js";
import { parseViewList, queryViews } from "../../views/index.js";
import { arrivedAt, type ServerDeps } from "./deps.js";
import { queryBody } from "./params.js";

const SCHEMA = {
  summary: "SQL across several views",
  description:
    "Attaches the live (or named, `name@N`) version of each view read-only under its processor's name and runs one read-only statement, e.g. `SELECT … FROM a.totals JOIN b.spend USING (user_id)`. Each view is read under one snapshot; the answer names each one's version and sequence. `minSeq` applies to every view.",
  tags: ["queries"],
  body: {
    type: "object",
    required: ["views", "sql"],
    properties: {
      views: { oneOf: [{ type: "array", items: { type: "string" } }, { type: "string", description: "comma-separated" }], description: "processors, each `name` or `name@version`" },
      sql: { type: "string" },
      params: { type: "object" },
      minSeq: { type: "integer" },
      limit: { type: "integer" },
      timeoutMs: { type: "integer" },
      maxBytes: { type: "integer" },
    },
  },
  response: {
    200: {
      type: "object",
      properties: {
        views: { type: "array", items: { type: "object", properties: { processor: { type: "string" }, version: { type: "integer" }, seq: { type: "integer" } } } },
        columns: { type: "array", items: { type: "string" } },
        rows: { type: "array", items: { type: "object", additionalProperties: true } },
        truncated: { type: "boolean" },
      },
    },
  },
} as const;

/** `POST /query`: one read-only statement over several views. */
export function registerViewsQuery(app: FastifyInstance, deps: ServerDeps): void {
  app.post(
    "/query",
    // Checked by queryBody, whose messages name the field; the schema documents it.
    { schema: SCHEMA, validatorCompiler: () => () => true },
    async (req) => {
      const body = (req.body ?? {}) as Record<string, unknown>;
      if (typeof body !== "object" || Array.isArray(body)) throw new InputError("the body must be a JSON object", { hint: '{"views": ["a", "b"], "sql": "SELECT …"}' });
      const { views, ...rest } = body;
      if (rest.version !== undefined) throw new InputError("version does not apply to several views", { hint: 'name a version in views instead: ["a@2", "b"]' });
      if (!(typeof views === "string" || (Array.isArray(views) && views.every((v) => typeof v === "string")))) {
        throw new InputError("views must be a list of processor names", { hint: '{"views": ["a", "b"], "sql": "SELECT … FROM a.totals JOIN b.spend USING (user_id)"}' });
      }
      const b = queryBody(rest, deps.limits);
      const a = await queryViews(deps.ctx.dataDir, deps.catalog.records, deps.pool, { views: parseViewList(Array.isArray(views) ? views.join(",") : views), ...b, arrivedAt: arrivedAt(req) });
      return { views: a.views, columns: a.columns, rows: a.rows, truncated: a.truncated };
    },
  );
}
