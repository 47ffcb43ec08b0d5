/**
 * The status page: plain HTML, a little CSS and vanilla JavaScript that renders the `status` events of
 * `GET /events/status`. Served inline, so `kappa serve` needs no static files.
 */
export const STATUS_PAGE = /* html */ `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Kappa · status</title>
<style>
  :root { --bg:#f6f7f9; --card:#fff; --ink:#1d2330; --muted:#6b7385; --line:#e3e6ec; --accent:#3d5afe;
          --ok:#1b8a4b; --warn:#b7791f; --bad:#c53030; --idle:#718096; }
  * { box-sizing: border-box; }
  body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background:var(--bg); color:var(--ink); }
  header { display:flex; align-items:center; gap:16px; padding:14px 24px; background:#151a26; color:#fff; }
  header h1 { font-size:18px; margin:0; letter-spacing:.5px; }
  header .meta { display:flex; gap:14px; margin-left:auto; font-size:13px; color:#c8cedb; align-items:center; }
  .pill { display:inline-flex; align-items:center; gap:6px; padding:2px 10px; border-radius:999px; font-size:12px; font-weight:600; }
  .dot { width:8px; height:8px; border-radius:50%; background:currentColor; }
  .pill.ok { background:#e6f6ed; color:var(--ok); } .pill.bad { background:#fde8e8; color:var(--bad); } .pill.warn { background:#fdf3e1; color:var(--warn); }
  main { max-width:1100px; margin:24px auto; padding:0 24px; }
  .card { background:var(--card); border:1px solid var(--line); border-radius:10px; margin-bottom:20px; overflow:hidden; }
  .card h2 { margin:0; padding:12px 16px; font-size:16px; border-bottom:1px solid var(--line); display:flex; gap:10px; align-items:baseline; }
  .card h2 small { color:var(--muted); font-weight:400; font-size:13px; }
  table { width:100%; border-collapse:collapse; }
  th, td { padding:8px 16px; text-align:left; border-bottom:1px solid var(--line); white-space:nowrap; }
  th { font-size:12px; text-transform:uppercase; letter-spacing:.4px; color:var(--muted); font-weight:600; background:#fafbfc; }
  td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
  tr:last-child td { border-bottom:0; }
  tr.live td { background:#f3f5ff; }
  .state { font-weight:600; font-size:12px; padding:2px 8px; border-radius:6px; }
  .state.live { background:#e6f6ed; color:var(--ok); } .state.building { background:#e8edff; color:var(--accent); }
  .state.caught-up { background:#eef2f7; color:#2d3748; } .state.failed { background:#fde8e8; color:var(--bad); }
  .state.retired { background:#f1f1f1; color:var(--idle); }
  .star { color:var(--ok); font-weight:700; }
  .bar { width:90px; height:6px; background:var(--line); border-radius:3px; display:inline-block; vertical-align:middle; margin-left:8px; overflow:hidden; }
  .bar i { display:block; height:100%; background:var(--accent); }
  .note { color:var(--bad); font-size:12px; white-space:normal; }
  .muted { color:var(--muted); }
  .flash { animation: flash 0.8s ease-out; }
  @keyframes flash { from { background:#fff3b0; } to { background:transparent; } }
  .empty { padding:40px; text-align:center; color:var(--muted); }
  code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size:12px; }
</style>
</head>
<body>
<header>
  <h1>Kappa</h1><span class="muted" style="color:#8f98ab">views &amp; versions</span>
  <div class="meta">
    <span>log head <b id="head">–</b></span>
    <span id="at" title="time of the last change"></span>
    <span id="nats" class="pill warn"><span class="dot"></span>NATS …</span>
    <span id="conn" class="pill warn"><span class="dot"></span>connecting</span>
  </div>
</header>
<main id="root"><div class="empty">waiting for the first update…</div></main>
<script>
(() => {
  const root = document.getElementById("root");
  const fmt = (n) => n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US");
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&":"&amp;", "<":"&lt;", ">":"&gt;", '"':"&quot;", "'":"&#39;" })[c]);
  const prev = new Map();
  function cell(key, text, cls) {
    const changed = prev.has(key) && prev.get(key) !== text;
    prev.set(key, text);
    return '<td class="' + (cls || "") + (changed ? " flash" : "") + '" data-k="' + esc(key) + '">' + text + "</td>";
  }
  function progress(v) {
    if (v.state !== "building" || !v.logHead) return "";
    const pct = Math.min(100, Math.round(100 * (v.checkpoint || 0) / v.logHead));
    return '<span class="bar" title="' + pct + '%"><i style="width:' + pct + '%"></i></span>';
  }
  function render(s) {
    document.getElementById("head").textContent = fmt(s.logHead);
    document.getElementById("at").textContent = "updated " + new Date(s.at).toLocaleTimeString();
    const nats = document.getElementById("nats");
    nats.className = "pill " + (s.nats.reachable ? "ok" : "bad");
    nats.innerHTML = '<span class="dot"></span>' + (s.nats.reachable ? "NATS ok" : "NATS unreachable — serving from SQLite");
    nats.title = s.nats.error || s.nats.url;
    if (!s.processors.length) { root.innerHTML = '<div class="empty">No processors deployed yet — <code>kappa deploy &lt;module&gt;</code></div>'; return; }
    root.innerHTML = s.processors.map((p) => {
      const rows = p.versions.map((v) => {
        const k = p.name + "/" + v.version + "/";
        const note = [v.error, v.trouble, v.source ? "source " + v.source : "", v.stale ? "worker not reporting" : ""].filter(Boolean).map(esc).join("; ");
        return '<tr class="' + (v.live ? "live" : "") + '" data-version="' + v.version + '">' +
          "<td>" + (v.live ? '<span class="star" title="live">★</span>' : "") + "</td>" +
          "<td><b>v" + v.version + "</b></td>" +
          '<td><span class="state ' + esc(v.state) + '">' + esc(v.state) + "</span>" + progress(v) + "</td>" +
          cell(k + "cp", fmt(v.checkpoint), "num checkpoint") +
          cell(k + "head", fmt(v.logHead), "num") +
          cell(k + "lag", fmt(v.lag), "num lag") +
          cell(k + "eps", fmt(v.eventsPerSec), "num eps") +
          cell(k + "applied", fmt(v.eventsApplied), "num applied") +
          "<td><code>" + esc(v.from) + "</code></td><td><code>" + esc(v.codeHash) + "</code></td>" +
          '<td class="note">' + note + "</td></tr>";
      }).join("");
      return '<section class="card" data-processor="' + esc(p.name) + '"><h2>' + esc(p.name) +
        " <small>" + (p.live === null ? "no live version yet" : "live: v" + p.live) + "</small></h2>" +
        "<table><thead><tr><th></th><th>version</th><th>state</th><th class=num>checkpoint</th><th class=num>log head</th>" +
        "<th class=num>lag</th><th class=num>events/s</th><th class=num title='events the worker ran through the processor since it started'>applied</th><th>from</th><th>code</th><th></th></tr></thead>" +
        "<tbody>" + rows + "</tbody></table></section>";
    }).join("");
  }
  function connect() {
    const conn = document.getElementById("conn");
    const es = new EventSource("events/status");
    es.addEventListener("status", (e) => { render(JSON.parse(e.data)); });
    es.onopen = () => { conn.className = "pill ok"; conn.innerHTML = '<span class="dot"></span>live'; };
    es.onerror = () => { conn.className = "pill bad"; conn.innerHTML = '<span class="dot"></span>reconnecting'; };
  }
  connect();
})();
</script>
</body>
</html>
`;
