// Experiment: the apply thread of the two-thread replay prototype (see leanApply.mjs for the batch format).
// After each batch it publishes the checkpoint and lowers the shared in-flight counter, so the reading
// thread (blocked in Atomics.wait when `inflight` batches are queued) may hand over more.
import { parentPort, workerData } from "node:worker_threads";
import { createApplier } from "./leanApply.mjs";

const { path, ctl: ctlBuf, code } = workerData;
const ctl = new Int32Array(ctlBuf);
const applier = createApplier(path, (await import(code)).default);
parentPort.on("message", (m) => {
  if (m === "count") return parentPort.postMessage({ placed: applier.placedOrders() });
  Atomics.store(ctl, 1, applier.apply(m.buf, m.end, m.types));
  Atomics.sub(ctl, 0, 1);
  Atomics.notify(ctl, 0);
});
parentPort.postMessage("ready");
