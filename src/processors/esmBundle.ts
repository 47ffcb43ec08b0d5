import { build, type BuildOptions } from "esbuild";

/**
 * One ES module for Node 20, built in memory: the esbuild options every bundle Kappa makes shares (a
 * processor's code, the apply thread). Identical options keep a processor's bundle, and so its code hash,
 * the same whichever caller builds it.
 */
export async function bundleEsm(entry: string, extra: Pick<BuildOptions, "absWorkingDir" | "alias" | "external" | "plugins"> = {}): Promise<string> {
  const out = await build({
    entryPoints: [entry],
    bundle: true,
    format: "esm",
    platform: "node",
    target: "node20",
    write: false,
    logLevel: "silent",
    legalComments: "none",
    ...extra,
  });
  const file = out.outputFiles[0];
  if (!file) throw new Error("esbuild produced no output");
  return file.text;
}
