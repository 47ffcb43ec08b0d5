// Polls a view file's checkpoint every ~200 µs on its own thread and posts [checkpoint, hrtime ms] on
// every change, so the main thread's publishing does not delay the observation. Plain JS: loaded by a Worker.
import { parentPort, workerData } from "node:worker_threads";
import Database from "better-sqlite3";

const { path, stop, intervalMs } = workerData;
const flag = new Int32Array(stop);
const nap = new Int32Array(new SharedArrayBuffer(4));
const db = new Database(path, { readonly: true, fileMustExist: true });
const read = db.prepare("SELECT seq FROM kappa_checkpoint WHERE id = 1").pluck();
let last = -1;
let polls = 0;
while (Atomics.load(flag, 0) === 0) {
  const seq = read.get();
  polls++;
  if (seq !== last) {
    last = seq;
    parentPort.postMessage([seq, Number(process.hrtime.bigint()) / 1e6]);
  }
  Atomics.wait(nap, 0, 0, intervalMs);
}
db.close();
parentPort.postMessage({ polls });
