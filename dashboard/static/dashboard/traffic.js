// Traffic lab panel: start/stop runs and draw, live, which pod served each request.
//
// The form's targets and caps come from /traffic/options (a target is a Service id, never a URL).
// The socket /ws/traffic/ sends a "snapshot" (full state) and then "frames" (deltas, ~8 per
// second); this module keeps a small model, draws the heatmap (pods x time, marks where the
// cluster changed) and the connection lanes on canvases, and fills the tables. What the page
// shows is mirrored in data-* attributes so tests and scripts can read it.
// Loaded as a static file: the page's CSP forbids inline script.
(function () {
  "use strict";

  const panel = document.getElementById("traffic-panel");
  if (!panel) return;

  const $ = (id) => document.getElementById(id);
  const form = $("traffic-form");
  const startButton = $("traffic-start");
  const stopButton = $("traffic-stop");
  const message = $("traffic-message");
  const heatmap = $("traffic-heatmap");
  const lanesCanvas = $("traffic-lanes");
  const KINDS = ["refused", "reset", "timeout", "5xx", "other"];
  const LANE_HISTORY = 24; // as dashboard/traffic/stats.py keeps
  const HEATMAP_HEIGHT = heatmap.height;
  const MARK_COLORS = { scale: "#4e9a06", rollout: "#75507b", kill: "#cc0000", gone: "#888a85",
    pod: "#3465a4", ready: "#4e9a06", unready: "#c4a000" };

  let model = emptyModel();
  let updates = 0;
  const updateTimes = [];
  let drawPending = false;

  function emptyModel() {
    return { runId: null, bucket: 0.25, rows: [], rowIndex: new Map(), cells: new Map(),
      errorCells: new Map(), latencyCells: new Map(), lanes: new Map(), markers: [],
      summary: null, run: null, maxCell: 1 };
  }

  function csrfToken() {
    const field = form.querySelector("input[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }

  function say(text, isError) {
    message.textContent = text;
    message.classList.toggle("error", Boolean(isError));
  }

  // --- form ---------------------------------------------------------------------------------
  function loadOptions() {
    fetch(panel.dataset.optionsUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((r) => (r.ok ? r.json() : Promise.reject(new Error("HTTP " + r.status))))
      .then((options) => {
        const select = $("traffic-target");
        const current = select.value;
        select.replaceChildren(...options.targets.map((t) => new Option(t.label, t.id)));
        if (current) select.value = current;
        if (!select.value && select.options.length) select.selectedIndex = 0;
        $("traffic-rps").max = options.limits.max_rps;
        $("traffic-conns").max = options.limits.max_conns;
        $("traffic-duration").max = options.limits.max_seconds;
        panel.dataset.targets = String(options.targets.length);
        if (options.error) say(options.error, true);
        else if (!options.targets.length) say("No Service with a selector in namespace " + options.namespace + ".", true);
      })
      .catch((err) => say("Cannot load traffic targets: " + err.message, true));
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    startButton.disabled = true;
    say("Starting…", false);
    fetch(panel.dataset.startUrl, { method: "POST", body: new FormData(form), credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken() } })
      .then((r) => r.json().catch(() => ({})).then((body) => ({ ok: r.ok, status: r.status, body })))
      .then(({ ok, status, body }) => {
        if (ok) {
          say("", false);
          setRunning(true);
        } else {
          say(body.error || "Refused (HTTP " + status + ")", true);
          startButton.disabled = false;
        }
      })
      .catch((err) => {
        say("Could not start: " + err.message, true);
        startButton.disabled = false;
      });
  });

  stopButton.addEventListener("click", () => {
    stopButton.disabled = true;
    fetch(panel.dataset.stopUrl, { method: "POST", credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken() } })
      .then((r) => {
        if (r.ok) return null;
        return r.json().catch(() => ({})).then((body) => say(body.error || "Refused (HTTP " + r.status + ")", true));
      })
      .catch((err) => say("Could not stop: " + err.message, true));
  });

  function setRunning(running) {
    startButton.disabled = running;
    stopButton.disabled = !running;
  }

  // --- socket -------------------------------------------------------------------------------
  let retry = 500;
  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + location.host + panel.dataset.wsPath);
    socket.addEventListener("open", () => { retry = 500; panel.dataset.socket = "open"; });
    socket.addEventListener("message", (event) => {
      let data;
      try { data = JSON.parse(event.data); } catch (e) { return; }
      if (data.type === "snapshot") applySnapshot(data);
      else if (data.type === "frames") data.frames.forEach(applyDelta);
      else if (data.type === "idle") setRunning(false);
      else if (data.type === "error") say(data.message, true);
      scheduleDraw();
    });
    socket.addEventListener("close", () => {
      panel.dataset.socket = "closed";
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 10000);
    });
  }

  // --- model --------------------------------------------------------------------------------
  function upsertRow(meta) {
    let index = model.rowIndex.get(meta.pod);
    if (index === undefined) {
      index = model.rows.length;
      model.rowIndex.set(meta.pod, index);
      model.rows.push(meta);
      model.cells.set(meta.pod, new Map());
    } else {
      model.rows[index] = meta;
    }
  }

  function setCell(pod, cell, count) {
    if (!model.cells.has(pod)) upsertRow({ pod, ip: "", first: cell * model.bucket, state: null, gone: null });
    model.cells.get(pod).set(cell, count);
    if (count > model.maxCell) model.maxCell = count;
  }

  function applyCommon(data) {
    data.rows.forEach(upsertRow);
    data.cells.forEach(([pod, cell, count]) => setCell(pod, cell, count));
    data.error_cells.forEach(([cell, count]) => model.errorCells.set(cell, count));
    data.latency_cells.forEach(([cell, p50, p99]) => model.latencyCells.set(cell, [p50, p99]));
    data.lanes.forEach((lane) => { // segments from the first changed connection on replace ours
      const first = lane.segments.length ? lane.segments[0][0] : Infinity;
      const kept = (model.lanes.get(lane.lane) || []).filter((segment) => segment[0] < first);
      model.lanes.set(lane.lane, kept.concat(lane.segments).slice(-LANE_HISTORY));
    });
    model.markers.push(...data.markers);
    model.summary = data.summary;
    model.run = data.run;
  }

  function applySnapshot(data) {
    model = emptyModel();
    model.runId = data.run.id;
    model.bucket = data.bucket;
    applyCommon(data);
    noteUpdate();
  }

  function applyDelta(frame) {
    if (frame.run.id !== model.runId) return;
    applyCommon(frame);
    noteUpdate();
  }

  function noteUpdate() {
    updates += 1;
    const now = performance.now();
    updateTimes.push(now);
    while (updateTimes.length && now - updateTimes[0] > 2000) updateTimes.shift();
    panel.dataset.updates = String(updates);
    panel.dataset.updateRate = (updateTimes.length / 2).toFixed(1);
  }

  function scheduleDraw() {
    if (drawPending) return;
    drawPending = true;
    requestAnimationFrame(() => { drawPending = false; render(); });
  }

  // --- drawing ------------------------------------------------------------------------------
  function podColor(pod) {
    let hash = 0;
    for (let i = 0; i < pod.length; i += 1) hash = (hash * 31 + pod.charCodeAt(i)) | 0;
    return "hsl(" + (Math.abs(hash) % 360) + ", 65%, 45%)";
  }

  function shortName(pod) {
    return pod.length > 26 ? pod.slice(0, 8) + "…" + pod.slice(-16) : pod;
  }

  function totalColumns() {
    const run = model.run;
    const seconds = run && run.duration ? run.duration : (run ? run.progress.elapsed : 1);
    return Math.max(1, Math.ceil(seconds / model.bucket));
  }

  function drawHeatmap() {
    const labelWidth = 170;
    const rows = model.rows.length + 1; // + the errors row
    const top = 16;
    const rowHeight = Math.max(10, Math.min(28, Math.floor((HEATMAP_HEIGHT - top - 4) / rows)));
    const height = Math.max(HEATMAP_HEIGHT, top + rows * rowHeight + 4); // many pods: grow, never squash
    if (heatmap.height !== height) heatmap.height = height;
    const ctx = heatmap.getContext("2d");
    const columns = totalColumns();
    const colWidth = (heatmap.width - labelWidth) / columns;
    ctx.clearRect(0, 0, heatmap.width, heatmap.height);
    ctx.font = "11px sans-serif";
    ctx.textBaseline = "middle";
    const withTraffic = [];
    model.rows.forEach((row, i) => {
      const y = top + i * rowHeight;
      const cells = model.cells.get(row.pod);
      let served = 0;
      cells.forEach((count, cell) => {
        served += count;
        const alpha = 0.15 + 0.85 * Math.min(1, count / model.maxCell);
        ctx.fillStyle = "rgba(32, 74, 135, " + alpha.toFixed(3) + ")";
        ctx.fillRect(labelWidth + cell * colWidth, y + 1, Math.max(1, colWidth), rowHeight - 2);
      });
      if (served) withTraffic.push(row.pod);
      if (row.gone !== null && row.gone !== undefined) {
        const x = labelWidth + (row.gone / model.bucket) * colWidth;
        ctx.fillStyle = "rgba(136, 138, 133, 0.25)";
        ctx.fillRect(x, y, heatmap.width - x, rowHeight);
      }
      ctx.fillStyle = row.state === "ready" || row.state === null ? "#2e3436"
        : row.state === "gone" ? "#888a85" : "#c4a000";
      const suffix = row.state && row.state !== "ready" ? " (" + row.state + ")" : "";
      ctx.fillText(shortName(row.pod) + suffix, 4, y + rowHeight / 2);
    });
    const errorY = top + model.rows.length * rowHeight;
    let errorMax = 1;
    model.errorCells.forEach((count) => { if (count > errorMax) errorMax = count; });
    model.errorCells.forEach((count, cell) => {
      ctx.fillStyle = "rgba(204, 0, 0, " + (0.25 + 0.75 * count / errorMax).toFixed(3) + ")";
      ctx.fillRect(labelWidth + cell * colWidth, errorY + 1, Math.max(1, colWidth), rowHeight - 2);
    });
    ctx.fillStyle = "#cc0000";
    ctx.fillText("errors", 4, errorY + rowHeight / 2);
    let labelEnd = 0;
    model.markers.forEach((marker) => {
      const x = labelWidth + (marker.t / model.bucket) * colWidth;
      ctx.strokeStyle = MARK_COLORS[marker.kind] || "#555753";
      ctx.beginPath();
      ctx.moveTo(x, top - 2);
      ctx.lineTo(x, errorY + rowHeight);
      ctx.stroke();
      const textX = Math.min(x + 2, heatmap.width - ctx.measureText(marker.label).width - 2);
      if (textX >= labelEnd) { // labels that would overlap are left to the list below the map
        ctx.fillStyle = ctx.strokeStyle;
        ctx.fillText(marker.label, textX, 6);
        labelEnd = textX + ctx.measureText(marker.label).width + 6;
      }
    });
    if (model.run && model.run.state === "running") {
      const x = labelWidth + (model.run.progress.elapsed / model.bucket) * colWidth;
      ctx.strokeStyle = "#555753";
      ctx.setLineDash([2, 3]);
      ctx.beginPath();
      ctx.moveTo(x, top);
      ctx.lineTo(x, errorY + rowHeight);
      ctx.stroke();
      ctx.setLineDash([]);
    }
    heatmap.dataset.rows = String(model.rows.length);
    heatmap.dataset.rowsWithTraffic = String(withTraffic.length);
    heatmap.dataset.podsWithTraffic = withTraffic.join(" ");
    heatmap.dataset.markers = String(model.markers.length);
    heatmap.dataset.markerLabels = model.markers.map((m) => m.label).join("|");
  }

  function drawLatency() {
    const canvas = $("traffic-latency-chart");
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    const labelWidth = 170;
    const colWidth = (canvas.width - labelWidth) / totalColumns();
    const cells = Array.from(model.latencyCells.entries()).sort((a, b) => a[0] - b[0]);
    let top = 1;
    cells.forEach(([, [, p99]]) => { if (p99 > top) top = p99; });
    const y = (ms) => canvas.height - 4 - (ms / top) * (canvas.height - 14);
    ctx.font = "11px sans-serif";
    ctx.textBaseline = "middle";
    [["p99", 1, "#cc0000"], ["p50", 0, "#204a87"]].forEach(([name, index, color], row) => {
      ctx.strokeStyle = color;
      ctx.beginPath();
      cells.forEach(([cell, values], i) => {
        const x = labelWidth + (cell + 0.5) * colWidth;
        if (i === 0) ctx.moveTo(x, y(values[index])); else ctx.lineTo(x, y(values[index]));
      });
      ctx.stroke();
      ctx.fillStyle = color;
      ctx.fillText("latency " + name, 4, 12 + row * 14);
    });
    ctx.fillStyle = "#555753";
    ctx.fillText(top.toFixed(1) + " ms", labelWidth - 60, 8);
  }

  function renderMarkers() {
    const list = $("traffic-markers");
    const key = model.runId + ":" + model.markers.length;
    if (list.dataset.key === key) return;
    list.dataset.key = key;
    list.replaceChildren(...model.markers.map((marker) => {
      const item = document.createElement("li");
      item.dataset.kind = marker.kind;
      const time = document.createElement("span");
      time.className = "t";
      time.textContent = marker.t.toFixed(1) + " s";
      item.append(time, document.createTextNode(marker.label));
      return item;
    }));
  }

  function drawLanes() {
    const ctx = lanesCanvas.getContext("2d");
    const lanes = Array.from(model.lanes.keys()).sort((a, b) => a - b);
    ctx.clearRect(0, 0, lanesCanvas.width, lanesCanvas.height);
    if (!lanes.length) return;
    const labelWidth = 170;
    const laneHeight = Math.max(2, Math.min(18, Math.floor((lanesCanvas.height - 4) / lanes.length)));
    const seconds = totalColumns() * model.bucket;
    const scale = (lanesCanvas.width - labelWidth) / seconds;
    ctx.font = "10px sans-serif";
    ctx.textBaseline = "middle";
    const pinned = [];
    lanes.forEach((lane, i) => {
      const y = 2 + i * laneHeight;
      const segments = model.lanes.get(lane);
      segments.forEach(([, pod, start, end, , errors]) => {
        ctx.fillStyle = pod ? podColor(pod) : "#cc0000";
        if (!pod && errors === 0) ctx.fillStyle = "#babdb6";
        const x = labelWidth + start * scale;
        ctx.fillRect(x, y + 1, Math.max(2, (end - start) * scale), Math.max(1, laneHeight - 2));
      });
      const last = segments[segments.length - 1];
      pinned.push(last && last[1] ? last[1] : "");
      if (laneHeight >= 9) {
        ctx.fillStyle = "#2e3436";
        ctx.fillText("conn " + (lane + 1) + " → " + (last && last[1] ? shortName(last[1]) : "–"), 4, y + laneHeight / 2);
      }
    });
    lanesCanvas.dataset.lanes = String(lanes.length);
    lanesCanvas.dataset.pinned = pinned.join(" ");
  }

  function pct(x) {
    return (x * 100).toFixed(1) + "%";
  }

  function cell(text) {
    const td = document.createElement("td");
    td.textContent = text;
    return td;
  }

  function renderTables() {
    const summary = model.summary;
    if (!summary) return;
    const tbody = $("traffic-pods").tBodies[0];
    const rows = summary.pods.map((pod) => {
      const tr = document.createElement("tr");
      tr.dataset.pod = pod.pod;
      tr.dataset.requests = String(pod.requests);
      tr.dataset.conns = String(pod.conns);
      tr.dataset.state = pod.state || "";
      if (pod.state === "gone") tr.classList.add("gone");
      else if (pod.state && pod.state !== "ready") tr.classList.add("unready");
      const bar = document.createElement("td");
      const fill = document.createElement("span");
      fill.className = "bar";
      fill.style.width = Math.round(pod.share * 120) + "px";
      bar.append(fill);
      if (pod.even !== null) {
        const even = document.createElement("span");
        even.className = "even";
        even.title = "even share";
        bar.append(even);
        even.style.marginLeft = Math.max(0, Math.round(pod.even * 120) - Math.round(pod.share * 120)) + "px";
      }
      const name = cell(pod.pod);
      if (pod.state && pod.state !== "ready") {
        const note = document.createElement("span");
        note.className = "state";
        note.textContent = " (" + (pod.state === "not-ready" ? "not ready" : pod.state) + ")";
        name.append(note);
      }
      tr.append(name, cell(String(pod.requests)), cell(pct(pod.share)),
        cell(pod.even === null ? "–" : pct(pod.even)), cell(String(pod.conns)), bar);
      return tr;
    });
    tbody.replaceChildren(...rows);
    const split = summary.split;
    let text = "";
    if (split.max_deviation !== null) {
      const among = split.basis === "ready" ? " endpoint" : " pod";
      const expectation = split.even_share !== null ? "even share " + pct(split.even_share) + " each"
        : "each its own expected share";
      text = "Among the " + split.pods + among + (split.pods === 1 ? "" : "s") + " and the " + split.requests +
        " request" + (split.requests === 1 ? "" : "s") + " they served (" + expectation + "), the furthest is " +
        (split.max_deviation * 100).toFixed(1) + " pp from its share";
      if (split.chance_sd !== null) {
        text += "; chance alone would give ±" + (split.chance_sd * 100).toFixed(1) + " pp with " +
          split.connections + " connection" + (split.connections === 1 ? "" : "s") + " balanced";
      }
      if (split.p_value !== null) text += " (χ² p = " + split.p_value.toPrecision(2) + ")";
      text += ". Expected: " + split.basis_text + ".";
    }
    $("traffic-split").textContent = text;
    const lat = summary.latency_ms;
    const run = model.run;
    const rate = run && run.progress.elapsed > 0 ? summary.requests / run.progress.elapsed : 0;
    const latencyRow = $("traffic-latency").tBodies[0].rows[0];
    [lat.p50, lat.p90, lat.p99, lat.max].forEach((v, i) => { latencyRow.cells[i].textContent = v.toFixed(1) + " ms"; });
    latencyRow.cells[4].textContent = rate.toFixed(0);
    const errorRow = $("traffic-errors").tBodies[0].rows[0];
    KINDS.forEach((kind, i) => {
      errorRow.cells[i].textContent = String(summary.errors[kind]);
      errorRow.cells[i].dataset.kind = kind;
    });
    errorRow.cells[KINDS.length].textContent = String(summary.dropped);
    const errorsTotal = KINDS.reduce((n, kind) => n + summary.errors[kind], 0);
    panel.dataset.errors = String(errorsTotal);
    panel.dataset.dropped = String(summary.dropped);
    panel.dataset.requests = String(summary.requests);
    panel.dataset.ok = String(summary.ok);
  }

  function renderProgress() {
    const run = model.run;
    if (!run) return;
    const bar = $("traffic-progress");
    bar.value = run.progress.fraction;
    const planned = run.progress.planned ? " of " + run.progress.planned : "";
    let text = run.state + " · " + run.progress.elapsed.toFixed(1) + " s · " + run.progress.done + planned +
      " requests · " + run.target + " via " + run.via + " · " + run.mode + ", " + run.conns + " conn";
    if (run.max_per_conn) text += ", recycle every " + run.max_per_conn;
    if (run.error) text += " · " + run.error;
    $("traffic-progress-text").textContent = text;
    panel.dataset.runState = run.state;
    panel.dataset.runId = String(run.id);
    setRunning(run.state === "running" || run.state === "starting");
  }

  // What the topology view draws of the run (topology.js listens): the pod each live keep-alive
  // connection is pinned to, and each pod's requests/s over the last second.
  function announce() {
    const run = model.run;
    const running = Boolean(run && (run.state === "running" || run.state === "starting"));
    const detail = { running, mode: run ? run.mode : null, target: run ? run.target : null,
      connections: [], rates: {} };
    if (running) {
      const now = run.progress.elapsed;
      const quiet = Math.max(1.5, run.rps ? 3 * run.conns / run.rps : 1.5); // longer: the connection is idle
      model.lanes.forEach((segments, lane) => {
        const last = segments[segments.length - 1];
        if (last && last[1] && now - last[3] <= quiet) detail.connections.push({ lane, conn: last[0], pod: last[1] });
      });
      const current = Math.floor(now / model.bucket);
      const window = Math.max(1, Math.round(1 / model.bucket)); // completed buckets of the last second
      model.cells.forEach((cells, pod) => {
        let count = 0;
        for (let cell = current - window; cell < current; cell += 1) count += cells.get(cell) || 0;
        if (count) detail.rates[pod] = count / (window * model.bucket);
      });
    }
    document.dispatchEvent(new CustomEvent("lbdemo:traffic", { detail }));
  }

  function render() {
    drawHeatmap();
    drawLatency();
    renderMarkers();
    drawLanes();
    renderTables();
    renderProgress();
    announce();
  }

  loadOptions();
  connect();
})();
