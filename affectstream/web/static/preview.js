// The live page of one camera: server-sent events drive the emotion panel, the 60 s timeline
// (SVG), the text log and the stats; the video is the server's MJPEG stream. No external
// requests; message text is only ever set as text, never parsed as HTML.
"use strict";
(function () {
  const WINDOW_S = 60;
  const W = 600, H = 100;
  const SVG = "http://www.w3.org/2000/svg";  // a namespace name, not a request
  const COLOURS = {
    happiness: "#f2c14e", sadness: "#4e79a7", neutral: "#9d9d9d", anger: "#e15759",
    surprise: "#76b7b2", disgust: "#59a14f", fear: "#b07aa1", contempt: "#ff9da7",
    anxiety: "#edc948", helplessness: "#bab0ac", disappointment: "#9c755f",
  };
  const body = document.body;
  const camera = body.dataset.camera;
  const base = body.dataset.base;
  const video = document.getElementById("video");
  const timeline = document.getElementById("timeline");
  const tracks = new Map();  // track id -> {points: [{t, probs}], bursts: [...], ended}
  const labels = new Set();
  let offset = null;  // server clock minus this browser's, from the latest live message
  let pointsTotal = 0, burstsTotal = 0;

  const now = () => Date.now() / 1000 + (offset || 0);
  const fmt = (v, digits) => (v === null || v === undefined) ? "–" : Number(v).toFixed(digits);
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };

  function track(id) {
    if (!tracks.has(id)) tracks.set(id, { points: [], bursts: [], ended: false });
    return tracks.get(id);
  }

  function setState(state) {
    const badge = document.getElementById("state");
    badge.dataset.state = state;
    badge.textContent = state;
  }

  function onEmotion(p) {
    const t = track(p.track_id);
    t.points.push({ t: p.ts, probs: p.probs });
    Object.keys(p.probs).forEach((l) => labels.add(l));
    pointsTotal += 1;
    t.emotion = p;
    renderEmotions();
  }

  function onBurst(p) {
    track(p.track_id).bursts.push({ t: p.ts, id: p.id, text: p.text, kind: p.kind });
    burstsTotal += 1;
  }

  function onLog(p) {
    const log = document.getElementById("log");
    const li = el("li", "", `#${p.track_id} ${fmt(p.start_s, 2)}–${fmt(p.end_s, 2)} s  ${p.text}`);
    li.dataset.kind = p.kind;
    log.prepend(li);
    while (log.children.length > 200) log.lastChild.remove();
  }

  function onStats(p) {
    const set = (k, v) => { document.querySelector(`[data-stat="${k}"]`).textContent = v; };
    const e2e = (p.stages_ms || {}).end_to_end || {};
    const vlm = p.vlm || {};
    set("fps", fmt(p.fps, 1));
    set("lag", `${fmt(e2e.p50, 0)} / ${fmt(e2e.p95, 0)} ms`);
    set("drops", `${p.dropped} / ${p.stale || 0}`);
    set("vlm", vlm.calls ? `${fmt(vlm.latency_ms_p50, 0)} / ${fmt(vlm.latency_ms_p95, 0)} ms`
                         : "no VLM calls");
    set("counts", `${p.tracks} / ${p.bursts}`);
    if (p.state === "opening") setState("opening");
  }

  function renderEmotions() {
    const box = document.getElementById("emotions");
    box.replaceChildren();
    for (const [id, t] of tracks) {
      if (t.ended || !t.emotion) continue;
      const p = t.emotion;
      const div = el("div", "emotion");
      div.dataset.track = id;
      const head = el("div", "head");
      head.append(el("b", "", `#${id} ${p.label}`), el("span", "source", p.source));
      div.append(head);
      const probs = Object.entries(p.probs).sort((a, b) => b[1] - a[1]);
      for (const [label, prob] of probs) {
        const row = el("div", "bar");
        const track = el("div", "track-bar");
        const fill = el("div", "fill");
        fill.style.width = `${Math.round(prob * 100)}%`;
        fill.style.background = COLOURS[label] || "#3c6fb4";
        track.append(fill);
        row.append(el("span", "", label), track, el("span", "", fmt(prob, 2)));
        div.append(row);
      }
      box.append(div);
    }
    if (!box.children.length) box.append(el("p", "empty", "no face with an emotion update"));
  }

  function svg(tag, attrs) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    return e;
  }

  function chart(id, t, start) {
    const x = (ts) => ((ts - start) / WINDOW_S * W).toFixed(1);
    const root = svg("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`,
                              preserveAspectRatio: "none" });
    root.dataset.track = id;
    const points = t.points.filter((p) => p.t >= start);
    for (const label of labels) {
      const coords = points.filter((p) => label in p.probs)
        .map((p) => `${x(p.t)},${(H - p.probs[label] * (H - 4) - 2).toFixed(1)}`);
      if (!coords.length) continue;
      root.append(svg("polyline", { points: coords.join(" "), fill: "none",
                                    stroke: COLOURS[label] || "#ccc", "stroke-width": 1.5,
                                    "vector-effect": "non-scaling-stroke",
                                    "data-label": label }));
    }
    const marks = t.bursts.filter((b) => b.t >= start);
    for (const b of marks) {
      const line = svg("line", { class: "burst-mark", x1: x(b.t), x2: x(b.t), y1: 0, y2: H,
                                 "vector-effect": "non-scaling-stroke", "data-burst": b.id });
      const title = svg("title", {});
      title.textContent = `${b.kind} burst: ${b.text}`;
      line.append(title);
      root.append(line);
    }
    return { root, points: points.length, marks: marks.length };
  }

  function renderTimeline() {
    const start = now() - WINDOW_S;
    const rows = [];
    let points = 0, marks = 0;
    for (const [id, t] of tracks) {
      t.points = t.points.filter((p) => p.t >= start);
      t.bursts = t.bursts.filter((b) => b.t >= start);
      if (!t.points.length && !t.bursts.length) continue;
      const c = chart(id, t, start);
      points += c.points;
      marks += c.marks;
      const row = el("div", "track");
      row.append(el("div", "name", `face #${id}${t.ended ? " (gone)" : ""}`), c.root);
      rows.push(row);
    }
    if (rows.length) timeline.replaceChildren(...rows);
    timeline.dataset.points = points;
    timeline.dataset.pointsTotal = pointsTotal;
    timeline.dataset.bursts = marks;
    timeline.dataset.burstsTotal = burstsTotal;
    const legend = document.getElementById("legend");
    legend.replaceChildren(...[...labels].map((l) => {
      const s = el("span", "", l);
      s.style.setProperty("--c", COLOURS[l] || "#ccc");
      return s;
    }));
  }

  function handle(msg) {
    const p = msg.payload;
    const kind = msg.topic.split("/").pop();
    if (msg.topic.split("/")[0] !== camera) return;  // another camera, or the process stats
    if (p && typeof p === "object" && typeof p.ts === "number") {
      const skew = p.ts - Date.now() / 1000;
      offset = offset === null ? skew : Math.max(offset, skew);
    }
    if (kind === "emotion" && p && p.probs) onEmotion(p);
    else if (kind === "bursts") onBurst(p);
    else if (kind === "log") onLog(p);
    else if (kind === "stats") onStats(p);
    else if (kind === "availability") setState(p === "online" ? "running" : "ended");
    else if (kind === "tracks" && p.type === "end") {
      track(p.track_id).ended = true;
      renderEmotions();
    }
  }

  function onFrame(f) {
    if (f.camera !== camera) return;
    video.dataset.faces = JSON.stringify(f.faces);
    video.dataset.faceCount = f.faces.length;
    video.dataset.frame = f.frame;
    video.dataset.width = f.width;
    video.dataset.height = f.height;
  }

  const events = new EventSource(`${base}/events`);
  events.onmessage = (ev) => handle(JSON.parse(ev.data));
  events.addEventListener("frame", (ev) => onFrame(JSON.parse(ev.data)));
  let lost = false;
  events.onopen = () => {
    if (!lost) return;
    lost = false;  // the server replays its recent history to a reconnected client
    tracks.clear();
    document.getElementById("log").replaceChildren();
  };
  events.onerror = () => { lost = true; setState("disconnected"); };
  setInterval(renderTimeline, 500);
})();
