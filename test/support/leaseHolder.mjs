// Holds a reader lease on one view version until killed: a reader in a process of its own.
// Usage: node leaseHolder.mjs <views dir> <version>
import { register } from "tsx/esm/api";
register();
const { takeLease } = await import("../../src/views/leases.ts");
const [dir, version] = process.argv.slice(2);
takeLease(dir, Number(version));
process.stdout.write("held\n");
setInterval(() => {}, 1000);
