import { describe, it, expect } from "vitest";
import { Validator } from "@seriousme/openapi-schema-validator";
import { TestEnv } from "./support/env.js";
import { cliContext } from "./support/cli.js";
import { startHttpServer } from "../src/cli/http/index.js";

/** `/views/:processor` as OpenAPI writes it: `/views/{processor}`. */
const openApiPath = (url: string) => url.replace(/:([A-Za-z_]+)/g, "{$1}");

describe("the OpenAPI document at /openapi.json", () => {
  it("is a valid OpenAPI 3.1 document with every route of the server, generated from the schemas that validate requests", async () => {
    await using env = await TestEnv.start();
    await using server = await startHttpServer(cliContext(env), { port: 0 });
    const res = await fetch(server.url + "/openapi.json");
    expect(res.status).toBe(200);
    const doc = (await res.json()) as { openapi: string; paths: Record<string, Record<string, { parameters?: { name: string; in: string }[]; requestBody?: unknown }>> };
    expect(doc.openapi).toBe("3.1.0");

    const result = await new Validator().validate(doc as unknown as Parameters<Validator["validate"]>[0]);
    expect(result.errors ?? [], JSON.stringify(result.errors)).toEqual([]);
    expect(result.valid).toBe(true);

    const routes = server.routes();
    expect(routes.length).toBeGreaterThanOrEqual(12);
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
    expect(documented.sort()).toEqual(routes.map((r) => { const [m, u] = r.split(" "); return `${m} ${openApiPath(u!)}`; }).sort());

    // The same schema that documents a request validates it.
    const query = doc.paths["/views/{processor}/query"]!.post!;
    expect(query.parameters).toContainEqual(expect.objectContaining({ name: "processor", in: "path" }));
    expect(JSON.stringify(query.requestBody)).toMatch(/"sql"/);
    const bad = await fetch(server.url + "/views/orders_by_user/query", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ sql: ["SELECT 1"] }) });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: "BAD_INPUT", message: "sql must be a string", hint: expect.stringMatching(/openapi\.json/) });
    const badName = await fetch(server.url + "/views/Orders/query", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ sql: "SELECT 1" }) });
    expect(badName.status).toBe(400);
    expect(((await badName.json()) as { message: string }).message).toMatch(/processor name "Orders" is not valid/);
  });
});
