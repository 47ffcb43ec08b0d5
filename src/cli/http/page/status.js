// The status page's script: renders the `status` events of `GET /events/status` as one card per
// processor, and draws events/s and lag per version with uPlot from the `history` and `sample` events.
(() => {
  "use strict";
  const MAX_POINTS = 300; // the server samples once a second: five minutes
  const COLORS = ["#3d5afe", "#1b8a4b", "#c05621", "#805ad5", "#c53030", "#2b6cb0", "#b7791f", "#319795"];
  const root = document.getElementById("root");
  const fmt = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"));
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  const eta = (s) => (s === null || s === undefined || !isFinite(s) ? "" : s < 60 ? Math.ceil(s) + "s" : s < 3600 ? Math.floor(s / 60) + "m" + Math.round(s % 60) + "s" : Math.floor(s / 3600) + "h" + Math.round((s % 3600) / 60) + "m");
  const prev = new Map();
  /** Cards by processor name; each keeps its charts across renders. */
  const cards = new Map();
  /** Chart series by processor: sample times (s) and, per version, events/s and lag. */
  const series = new Map();
  /** For tests and the curious: the uPlot instances, by processor. */
  window.kappaCharts = {};

  function cell(key, text, cls) {
    const changed = prev.has(key) && prev.get(key) !== text;
    prev.set(key, text);
    return '<td class="' + (cls || "") + (changed ? " flash" : "") + '">' + text + "</td>";
  }

  function progress(v) {
    if (v.state !== "building" || !v.logHead) return "";
    const end = v.frozenAt === undefined ? v.logHead : Math.min(v.logHead, v.frozenAt); // a frozen build ends at its --until
    const pct = Math.min(100, Math.floor((100 * (v.checkpoint || 0)) / end));
    const left = eta(v.etaSeconds);
    return '<span class="progress" title="' + fmt(v.checkpoint) + " of " + fmt(end) + '"><span class="bar"><i style="width:' + pct + '%"></i></span>' +
      pct + "%" + (left ? ' · <span class="eta">ETA ' + left + "</span>" : "") + "</span>";
  }

  function rowsOf(p) {
    return p.versions.map((v) => {
      const k = p.name + "/" + v.version + "/";
      const note = [v.trouble, v.source ? "source " + v.source : "", v.stale && v.state !== "failed" ? "worker not reporting" : ""].filter(Boolean).map(esc).join("; ");
      const writer = v.writer ? '<span class="writer" title="the worker that writes this version">' + esc(v.writer) + "</span>" : "";
      return '<tr class="' + (v.live ? "live" : "") + '" data-version="' + v.version + '">' +
        "<td>" + (v.live ? '<span class="star" title="live">★</span>' : "") + "</td>" +
        "<td><b>v" + v.version + "</b></td>" +
        '<td><span class="state ' + esc(v.state) + '">' + esc(v.frozenAt === undefined ? v.state : v.state === "caught-up" ? "frozen at " + v.frozenAt : v.state + " (frozen at " + v.frozenAt + ")") + "</span>" + progress(v) + "</td>" +
        cell(k + "cp", fmt(v.checkpoint), "num checkpoint") +
        cell(k + "head", fmt(v.logHead), "num head") +
        cell(k + "lag", fmt(v.lag), "num lag") +
        cell(k + "eps", fmt(v.eventsPerSec), "num eps") +
        cell(k + "applied", fmt(v.eventsApplied), "num applied") +
        cell(k + "dl", fmt(v.deadLetters), "num dead-letters") +
        "<td><code>" + esc(v.from) + "</code></td><td><code>" + esc(v.codeHash) + "</code></td>" +
        "<td>" + writer + '</td><td class="note">' + note + "</td></tr>";
    }).join("");
  }

  function failuresOf(p) {
    const failed = p.versions.filter((v) => v.state === "failed" && v.error);
    if (!failed.length) return "";
    return failed.map((v) => '<li data-version="' + v.version + '"><b>v' + v.version + " failed</b>" + (/^event \d/.test(v.error) ? " at " : ": ") + esc(v.error) +
      " — deploy a fix (<code>kappa deploy</code>), or <code>kappa retire " + esc(p.name) + " " + v.version + "</code></li>").join("");
  }

  function cardOf(name) {
    let c = cards.get(name);
    if (c) return c;
    const el = document.createElement("section");
    el.className = "card";
    el.dataset.processor = name;
    el.innerHTML = '<h2></h2><table><thead><tr><th></th><th>version</th><th>state</th><th class=num>checkpoint</th><th class=num>log head</th>' +
      "<th class=num>lag</th><th class=num>events/s</th><th class=num title='events the worker ran through the processor since it started'>applied</th>" +
      "<th class=num title='events skipped into the dead-letter table (onError: skip); kappa dlq lists them'>dead letters</th><th>from</th><th>code</th><th>writer</th><th></th></tr></thead><tbody></tbody></table>" +
      '<ul class="failures" hidden></ul><div class="charts"><div class="chart eps"><h3>events/s</h3></div><div class="chart lag"><h3>lag (events)</h3></div></div>';
    c = { el, h2: el.querySelector("h2"), body: el.querySelector("tbody"), failures: el.querySelector(".failures"), eps: el.querySelector(".chart.eps"), lag: el.querySelector(".chart.lag") };
    cards.set(name, c);
    return c;
  }

  /** The workers card: every worker holding writer leases, and what it writes. */
  function renderWorkers(workers) {
    let el = document.getElementById("workers");
    if (!workers.length) { if (el) el.remove(); return; }
    if (!el) {
      el = document.createElement("section");
      el.id = "workers";
      el.className = "card";
      root.prepend(el);
    }
    el.innerHTML = "<h2>workers <small>" + workers.length + " writing</small></h2><table><thead><tr><th>worker</th><th>writes</th></tr></thead><tbody>" +
      workers.map((w) => '<tr data-worker="' + esc(w.worker) + '"><td><code>' + esc(w.worker) + "</code></td><td>" + w.writes.map(esc).join(", ") + "</td></tr>").join("") + "</tbody></table>";
  }

  function render(s) {
    document.getElementById("head").textContent = fmt(s.logHead);
    document.getElementById("at").textContent = "updated " + new Date(s.at).toLocaleTimeString();
    const nats = document.getElementById("nats");
    nats.className = "pill " + (s.nats.reachable ? "ok" : "bad");
    nats.innerHTML = '<span class="dot"></span>' + (s.nats.reachable ? "NATS ok" : "NATS unreachable — serving from SQLite");
    nats.title = s.nats.error || s.nats.url;
    if (!s.processors.length) {
      root.innerHTML = '<div class="empty">No processors deployed yet — <code>kappa deploy &lt;module&gt;</code></div>';
      cards.clear();
      return;
    }
    root.querySelector(".empty")?.remove();
    renderWorkers(s.workers || []);
    const seen = new Set();
    for (const p of s.processors) {
      seen.add(p.name);
      const c = cardOf(p.name);
      if (c.el.parentNode !== root) root.appendChild(c.el);
      c.h2.innerHTML = esc(p.name) + " <small>" + (p.live === null ? "no live version yet" : "live: v" + p.live) + "</small>";
      c.body.innerHTML = rowsOf(p);
      const f = failuresOf(p);
      c.failures.innerHTML = f;
      c.failures.hidden = !f;
    }
    for (const [name, c] of cards) if (!seen.has(name)) { c.el.remove(); cards.delete(name); delete window.kappaCharts[name]; series.delete(name); }
  }

  /** Adds one server sample ({t, versions: [{processor, version, eps, lag}]}) to every processor's series. */
  function ingest(sample) {
    const byProcessor = new Map();
    for (const v of sample.versions) {
      if (!byProcessor.has(v.processor)) byProcessor.set(v.processor, []);
      byProcessor.get(v.processor).push(v);
    }
    for (const [name, vs] of byProcessor) {
      let st = series.get(name);
      if (!st) series.set(name, (st = { t: [], versions: new Map(), rebuild: true }));
      st.t.push(sample.t / 1000);
      for (const v of vs) {
        if (!st.versions.has(v.version)) {
          st.versions.set(v.version, { eps: new Array(st.t.length - 1).fill(null), lag: new Array(st.t.length - 1).fill(null) });
          st.rebuild = true;
        }
      }
      for (const [version, arr] of st.versions) {
        const v = vs.find((x) => x.version === version);
        arr.eps.push(v ? v.eps : null);
        arr.lag.push(v ? v.lag : null);
      }
      if (st.t.length > MAX_POINTS) {
        const cut = st.t.length - MAX_POINTS;
        st.t.splice(0, cut);
        for (const arr of st.versions.values()) { arr.eps.splice(0, cut); arr.lag.splice(0, cut); }
      }
    }
  }

  function chartOpts(width, versions, what) {
    return {
      width, height: 150,
      legend: { show: true, live: false },
      cursor: { drag: { x: false, y: false } },
      scales: {
        // One sample gives uPlot an empty range, which it widens to years: show the last minute instead.
        x: { time: true, range: (_u, min, max) => {
          if (max == null || min == null || max - min < 1) { const t = max == null ? Date.now() / 1000 : max; return [t - 60, t + 1]; }
          return [min, max];
        } },
        y: { range: (_u, min, max) => [0, Math.max(1, max * 1.1)] } },
      axes: [{ stroke: "#6b7385", grid: { stroke: "#eef0f4" } }, { stroke: "#6b7385", grid: { stroke: "#eef0f4" }, size: 60 }],
      series: [{}].concat(versions.map((v, i) => ({ label: "v" + v + " " + what, stroke: COLORS[(v - 1) % COLORS.length] || COLORS[i % COLORS.length], width: 2, points: { show: false }, spanGaps: false }))),
    };
  }

  function draw() {
    if (typeof uPlot === "undefined") return;
    for (const [name, st] of series) {
      const c = cards.get(name);
      if (!c) continue;
      const versions = [...st.versions.keys()].sort((a, b) => a - b);
      const data = (what) => [st.t].concat(versions.map((v) => st.versions.get(v)[what]));
      let charts = window.kappaCharts[name];
      if (st.rebuild || !charts) {
        if (charts) { charts.eps.destroy(); charts.lag.destroy(); }
        const width = Math.max(260, Math.floor(c.eps.clientWidth || 520));
        charts = window.kappaCharts[name] = {
          eps: new uPlot(chartOpts(width, versions, "events/s"), data("eps"), c.eps),
          lag: new uPlot(chartOpts(width, versions, "lag"), data("lag"), c.lag),
        };
        st.rebuild = false;
      } else {
        charts.eps.setData(data("eps"));
        charts.lag.setData(data("lag"));
      }
    }
  }

  function connect() {
    const conn = document.getElementById("conn");
    const es = new EventSource("events/status");
    es.addEventListener("status", (e) => { render(JSON.parse(e.data)); draw(); });
    es.addEventListener("history", (e) => {
      series.clear();
      for (const s of JSON.parse(e.data).samples) ingest(s);
      draw();
    });
    es.addEventListener("sample", (e) => { ingest(JSON.parse(e.data)); draw(); });
    es.onopen = () => { conn.className = "pill ok"; conn.innerHTML = '<span class="dot"></span>live'; };
    es.onerror = () => {
      conn.className = "pill bad";
      conn.innerHTML = '<span class="dot"></span>reconnecting';
      // A refusal (503 when the server's event streams are at their cap) closes an EventSource for good.
      if (es.readyState === EventSource.CLOSED) setTimeout(connect, 3000);
    };
  }
  connect();
})();
