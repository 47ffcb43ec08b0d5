// Experiment: the apply half of the replay prototype, shared by the worker thread and the one-thread variant.
// A batch is one ArrayBuffer of records: seq f64, time ms f64, type u16, header length u32, total length u32,
// then the raw header+payload bytes. Headers are decoded only for the Nats-Msg-Id, JSON is parsed here,
// handlers run and the checkpoint moves in one transaction.
import Database from "better-sqlite3";

export function createApplier(path, def) {
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  for (const sql of def.schema) db.exec(sql);
  db.exec("CREATE TABLE IF NOT EXISTS kappa_checkpoint (id INTEGER PRIMARY KEY, seq INTEGER NOT NULL, events INTEGER NOT NULL DEFAULT 0); INSERT OR IGNORE INTO kappa_checkpoint VALUES (1, 0, 0)");
  const cache = new Map();
  const prepare = db.prepare.bind(db);
  db.prepare = (sql) => cache.get(sql) ?? (cache.set(sql, prepare(sql)), cache.get(sql));
  const ctx = { db, processor: def.name, version: 1, random: () => 0, emit: () => {} };
  const writeCp = db.prepare("UPDATE kappa_checkpoint SET seq = ?, events = events + ? WHERE id = 1 AND seq = ?");
  const dec = new TextDecoder();
  const handlers = [];
  const state = { checkpoint: 0, types: [] };
  const handlerFor = (i) => {
    const t = state.types[i];
    if (handlers[i] === undefined) handlers[i] = def.on?.[t.slice(t.indexOf(".") + 1)] ?? null;
    return handlers[i];
  };
  const idOf = (h) => {
    const at = h.indexOf("Nats-Msg-Id: ");
    return at < 0 ? "" : h.slice(at + 13, h.indexOf("\r\n", at));
  };
  const tx = db.transaction((u8, dv, end, ids) => {
    let p = 0;
    let i = 0;
    let last = state.checkpoint;
    let n = 0;
    while (p < end) {
      const seq = dv.getFloat64(p, true);
      const ms = dv.getFloat64(p + 8, true);
      const t = dv.getUint16(p + 16, true);
      const hdr = dv.getUint32(p + 18, true);
      const len = dv.getUint32(p + 22, true);
      const body = p + 26;
      p = body + len;
      const k = i++;
      if (seq <= last) continue; // redelivered
      last = seq;
      const h = handlerFor(t);
      if (!h) continue;
      const id = ids ? ids[k] : hdr > 0 ? idOf(dec.decode(u8.subarray(body, body + hdr))) : "";
      const data = JSON.parse(dec.decode(u8.subarray(body + hdr, body + len)));
      const type = state.types[t];
      h({ seq, type: type.slice(type.indexOf(".") + 1), time: new Date(ms).toISOString(), id, data }, ctx);
      n++;
    }
    if (last > state.checkpoint && writeCp.run(last, n, state.checkpoint).changes !== 1) throw new Error("checkpoint moved");
    state.checkpoint = last;
  });
  return {
    state,
    /** `ids`: the events' Nats-Msg-Id when the batch holds payloads only (headers read with the public API). */
    apply(buf, end, types, ids) {
      if (types) state.types = types;
      tx(new Uint8Array(buf), new DataView(buf), end, ids);
      return state.checkpoint;
    },
    placedOrders: () => db.prepare("SELECT coalesce(sum(orders), 0) AS n FROM totals").get().n,
    close: () => db.close(),
  };
}
