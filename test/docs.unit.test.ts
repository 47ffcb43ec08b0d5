import { describe, it, expect } from "vitest";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

// The README is a front page that links into docs/; a moved or renamed section must not leave a dead link.
const ROOT = resolve(".");
const FILES = ["README.md", "bench/README.md", ...readdirSync("docs").filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)];

/** Lines outside fenced code blocks, with their 1-based numbers. */
function prose(path: string): [number, string][] {
  let code = false;
  const out: [number, string][] = [];
  readFileSync(path, "utf8").split("\n").forEach((line, i) => {
    if (line.startsWith("```")) code = !code;
    else if (!code) out.push([i + 1, line]);
  });
  return out;
}

/** GitHub's anchors for a file's headings: lower case, punctuation dropped, spaces to hyphens. */
function anchors(path: string): Set<string> {
  const set = new Set<string>();
  for (const [, line] of prose(path)) {
    const m = /^#{1,6} (.*)$/.exec(line);
    if (m) set.add(m[1]!.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, "").replace(/ /g, "-"));
  }
  return set;
}

describe("the README and docs/", () => {
  it("link only to files and headings that exist", () => {
    const broken: string[] = [];
    for (const file of FILES) {
      for (const [n, line] of prose(file)) {
        for (const [, target] of line.matchAll(/\]\(([^)\s]+)\)/g)) {
          if (/^[a-z]+:/.test(target!)) continue; // https:, mailto:
          const [path, anchor] = target!.split("#");
          const to = path ? resolve(dirname(file), path) : resolve(file);
          if (!existsSync(to)) broken.push(`${file}:${n}: ${target} (no such file)`);
          else if (anchor && to.endsWith(".md") && !anchors(to).has(anchor)) broken.push(`${file}:${n}: ${target} (no heading ${relative(ROOT, to)}#${anchor})`);
        }
      }
    }
    expect(broken).toEqual([]);
  });

  it("give the two set-up commands, and CI runs the README's test command", () => {
    const readme = readFileSync("README.md", "utf8");
    const setUp = /## Set up\n[\s\S]*?```sh\n([\s\S]*?)```/.exec(readme)?.[1] ?? "";
    expect(setUp.split("\n").filter(Boolean).map((l) => l.split("#")[0]!.trim())).toEqual(["npm run demo", "npm test"]);
    expect(readFileSync(join(".ci", "run"), "utf8")).toMatch(/^npm test$/m);
  });
});
