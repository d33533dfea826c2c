// lb-demo live topology (issue 12): the seed's mental model drawn as SVG, kept live.
//
//   Deployment → ReplicaSets → Pods (in their node's box) ← Service ← clients
//
// The graph (nodes and edges, no positions) comes from dashboard/topology.py in the hidden
// #topology-patch element: the page load carries the whole graph, each websocket frame that
// changes it a patch (from seq → seq). The clients come from the traffic panel (traffic.js
// dispatches an "lbdemo:traffic" event per update of its own socket): no second data path.
//
// Layout is plain SVG with a fixed, layered structure instead of a general graph-layout
// library: every item gets a slot when it appears and keeps it while it lives, so one pod
// changing never moves another. Beyond GROUP_AT selected pods (OUT_GROUP_AT outside the
// selector), pods are grouped per node and ReplicaSet (per app label outside) with counts;
// a click expands a group. Only what is visible is in the DOM, and a render touches only the
// elements whose attributes changed.
//
// DOM hooks (tests, scripts): #topology; nodes [data-kind][data-name] (data-id "Kind/name");
// edges [data-from][data-to][data-state] with ids "Kind/name"; pods carry data-status,
// data-ready, data-selected and data-zone (selected / outside). No inline script: CSP.
(function () {
  "use strict";

  const root = document.getElementById("topology");
  if (!root) return;
  const NS = "http://www.w3.org/2000/svg";

  // --- geometry -------------------------------------------------------------------------------
  const POD_W = 160, POD_H = 40, GAP = 8, PAD = 10, HEAD = 24, MAX_COLS = 3;
  let cols = 0; // pods per row in a node box: chosen once, so that the nodes fit side by side
  const colsOf = (box) => (box === "outside" ? 1 : cols || 2);
  const widthFor = (c) => 2 * PAD + c * POD_W + (c - 1) * GAP;
  const boxWidth = (box) => widthFor(colsOf(box));
  const CHIP_W = 230, CHIP_H = 46, CHIP_GAP = 28, MARGIN = 16, BOX_GAP = 16, ROW_GAP = 44;
  const GROUP_AT = 40, UNGROUP_AT = 32, OUT_GROUP_AT = 12, OUT_UNGROUP_AT = 8;
  const LEAVE_MS = 800, ENTER_MS = 900;
  const UNSCHEDULED = "(not scheduled)"; // as dashboard/presenters.py names it

  // Which row each non-pod kind sits in, top to bottom. Adding a kind: one line here, plus its
  // builder in dashboard/topology.py (and a colour in topology.css if it wants one).
  const ROWS = {
    Deployment: "workload", HorizontalPodAutoscaler: "workload",
    ReplicaSet: "replicasets",
    Service: "services",
    Ingress: "ingresses",
    Client: "clients",
  };
  const ROW_ORDER_TOP = ["workload", "replicasets"];
  const ROW_ORDER_BOTTOM = ["services", "ingresses", "clients"];
  const KIND_LABEL = { HorizontalPodAutoscaler: "HPA" };

  // --- state ----------------------------------------------------------------------------------
  const model = { seq: null, nodes: new Map(), edges: new Map() };
  let traffic = { running: false, connections: [], rates: {} };
  let lastPatch = null;
  let needResync = false;
  let grouped = false, outGrouped = false;
  const expanded = new Set();
  let expandAll = false;
  let width = 0;
  let initial = true;
  let renderPending = false;

  const boxOrder = [];                 // node names, in order of first appearance
  const boxSlots = new Map();          // box name -> Map(item key -> slot index)
  const rowSlots = new Map();          // row -> Map(item id -> slot index)
  const leaving = new Map();           // pod id -> {until}: fading out, its slot still taken
  const drawn = new Map();             // element key -> {el, sig}
  const bornAt = new Map();            // element key -> time it appeared (entering animation)

  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("class", "topology-svg");
  svg.setAttribute("role", "group");
  svg.setAttribute("aria-label", "Deployment, ReplicaSets, pods by node, Service and clients");
  const layers = {};
  ["zones", "edges", "nodes", "labels"].forEach((name) => {
    const g = document.createElementNS(NS, "g");
    g.setAttribute("class", "layer-" + name);
    svg.append(g);
    layers[name] = g;
  });
  root.append(svg);
  const expandButton = document.getElementById("topology-expand");

  // --- patches --------------------------------------------------------------------------------
  // Wire format (dashboard/topology.py): nodes as objects, pods as arrays of pod_fields, edges as
  // [from, to, state]; ids are "Kind/name", and a pod's ReplicaSet edge is its owner field.
  let podFields = [];
  function upsert(patch) {
    patch.nodes.forEach((n) => { n.id = n.kind + "/" + n.name; model.nodes.set(n.id, n); });
    patch.pods.forEach((values) => {
      const n = { kind: "Pod" };
      podFields.forEach((field, i) => { n[field] = values[i]; });
      n.id = "Pod/" + n.name;
      model.nodes.set(n.id, n);
    });
    patch.edges.forEach(([from, to, state]) => model.edges.set(from + ">" + to, { from, to, state }));
  }

  function readPatch() {
    const el = document.getElementById("topology-patch");
    if (!el) return;
    const text = el.textContent;
    if (text === lastPatch) return;
    lastPatch = text;
    let patch;
    try { patch = JSON.parse(text); } catch (e) { return; }
    if (patch.reset) {
      podFields = patch.pod_fields;
      model.nodes = new Map();
      model.edges = new Map();
      upsert(patch);
    } else if (patch.from === model.seq) {
      patch.removed_nodes.forEach((id) => model.nodes.delete(id));
      patch.removed_edges.forEach(([from, to]) => model.edges.delete(from + ">" + to));
      upsert(patch);
    } else {
      needResync = true; // a frame was missed: ask the server for a snapshot
      return;
    }
    const before = new Set(shownPods);
    model.seq = patch.seq;
    // Pods that left the model fade out in place before their slot is given to another.
    before.forEach((id) => {
      if (!model.nodes.has(id) && !leaving.has(id)) leaving.set(id, { until: performance.now() + LEAVE_MS });
    });
    schedule();
  }

  document.addEventListener("htmx:wsAfterMessage", (event) => {
    if (!event.target || event.target.id !== "live") return;  // the cluster socket only
    readPatch();
    if (needResync) {
      needResync = false;
      event.detail.socketWrapper.send(JSON.stringify({ type: "resync" }));
    }
  });
  document.addEventListener("lbdemo:traffic", (event) => {
    traffic = event.detail;
    schedule();
  });
  if (expandButton) {
    expandButton.addEventListener("click", () => {
      expandAll = !expandAll;
      expanded.clear();
      expandButton.textContent = expandAll ? "collapse all groups" : "expand all groups";
      boxSlots.clear();
      schedule();
    });
  }

  function schedule() {
    if (renderPending) return;
    renderPending = true;
    requestAnimationFrame(() => { renderPending = false; render(); });
  }

  // --- what is visible ------------------------------------------------------------------------
  let shownPods = new Set();

  function podsOf(predicate) {
    const out = [];
    model.nodes.forEach((n) => { if (n.kind === "Pod" && predicate(n)) out.push(n); });
    return out;
  }

  // A pod node may stand for a crowd's folded pods (dashboard/topology.py _fold_crowds).
  function weight(pod) { return pod.count || 1; }
  function weigh(pods) { let n = 0; pods.forEach((p) => { n += weight(p); }); return n; }

  function groupKeyOf(pod) {
    if (pod.selected) return "group:" + pod.node + ":" + (pod.owner || "-");
    return "group:outside:" + (pod.app || "-");
  }

  let groupSizes = new Map();
  function inGroupMode(pod) {
    return (pod.selected ? grouped : outGrouped) && !expandAll && (groupSizes.get(groupKeyOf(pod)) || 0) > 1;
  }
  function isGrouped(pod) { return inGroupMode(pod) && !expanded.has(groupKeyOf(pod)); }

  // The key under which a model node is drawn: itself, or the group that holds it.
  function visibleKey(id) {
    const node = model.nodes.get(id);
    if (node && node.kind === "Pod" && isGrouped(node)) return groupKeyOf(node);
    return id;
  }

  function boxOf(pod) { return pod.selected ? pod.node : "outside"; }

  function updateModes() {
    const selected = weigh(podsOf((p) => p.selected));
    const outside = weigh(podsOf((p) => !p.selected));
    const wasGrouped = grouped, wasOut = outGrouped;
    grouped = grouped ? selected > UNGROUP_AT : selected > GROUP_AT;
    outGrouped = outGrouped ? outside > OUT_UNGROUP_AT : outside > OUT_GROUP_AT;
    if (grouped !== wasGrouped || outGrouped !== wasOut) boxSlots.clear(); // the one global re-layout
    if (expandButton) expandButton.hidden = !(grouped || outGrouped);
    groupSizes = new Map();
    if (grouped || outGrouped) {
      model.nodes.forEach((n) => {
        if (n.kind === "Pod") groupSizes.set(groupKeyOf(n), (groupSizes.get(groupKeyOf(n)) || 0) + weight(n));
      });
    }
  }

  function slotIn(map, key) {
    let slot = map.get(key);
    if (slot !== undefined) return slot;
    const used = new Set(map.values());
    slot = 0;
    while (used.has(slot)) slot += 1;
    map.set(key, slot);
    return slot;
  }

  function centeredSlotX(slot, center) {
    // slots 0, 1, 2, 3, 4 … sit at centre, right, left, right+1, left+1 … of the row's centre
    const step = CHIP_W + CHIP_GAP;
    const offset = slot === 0 ? 0 : (slot % 2 ? Math.ceil(slot / 2) : -slot / 2);
    return center + offset * step - CHIP_W / 2;
  }

  // --- layout ---------------------------------------------------------------------------------
  function layout() {
    updateModes();
    if (!width) width = Math.max(900, root.clientWidth || 1200);
    // Items in each box: pods (or their groups), plus fading ones keeping their slot.
    const items = new Map(); // box -> Map(key -> item)
    const addItem = (box, key, item) => {
      if (!items.has(box)) items.set(box, new Map());
      items.get(box).set(key, item);
    };
    const pods = podsOf(() => true); // oldest first: the server sends them so, new ones come last
    const groups = new Map();
    // Boxes keep the order they first appeared in (new ones sorted by name among themselves).
    const fresh = new Set();
    model.nodes.forEach((n) => { if (n.kind === "Node") fresh.add(n.name); });
    pods.forEach((pod) => { if (pod.selected) fresh.add(pod.node); });
    Array.from(fresh).filter((b) => !boxOrder.includes(b)).sort().forEach((b) => boxOrder.push(b));
    pods.forEach((pod) => {
      const box = boxOf(pod);
      if (inGroupMode(pod)) {
        const key = groupKeyOf(pod);
        let group = groups.get(key);
        if (!group) {
          group = { key, box, pods: [], owner: pod.selected ? pod.owner : "", app: pod.selected ? "" : pod.app,
            selected: pod.selected, open: expanded.has(key) };
          groups.set(key, group);
          addItem(box, key, { type: "group", group });
        }
        group.pods.push(pod);
        if (!group.open) return;
      }
      addItem(box, pod.id, { type: "pod", pod });
    });
    const now = performance.now();
    leaving.forEach((info, id) => {
      if (now >= info.until) { leaving.delete(id); return; }
      const last = drawn.get(id);
      if (last && last.pod) addItem(boxOf(last.pod), id, { type: "pod", pod: last.pod, leaving: true });
    });
    // Slots: kept while the item lives; a gone item frees its slot.
    const boxes = boxOrder.filter((b) => b !== UNSCHEDULED);
    if (items.has(UNSCHEDULED)) boxes.push(UNSCHEDULED);
    boxes.push("outside");
    boxes.forEach((box) => {
      const map = boxSlots.get(box) || new Map();
      boxSlots.set(box, map);
      const present = items.get(box) || new Map();
      Array.from(map.keys()).forEach((key) => { if (!present.has(key)) map.delete(key); });
      present.forEach((item, key) => { item.slot = slotIn(map, key); });
    });
    const nodeBoxes = boxes.filter((b) => b !== "outside");
    if (!cols && nodeBoxes.length) {
      const room = width - 2 * MARGIN - widthFor(1) - BOX_GAP; // the outside box is one column wide
      cols = 1;
      for (let c = MAX_COLS; c > 1; c -= 1) {
        if (nodeBoxes.length * (widthFor(c) + BOX_GAP) <= room) { cols = c; break; }
      }
    }
    // Boxes flow left to right, wrapping at the panel's width; each band row is as tall as its
    // fullest box. The outside box starts a row of its own when the nodes needed more than one.
    const bandRows = [];
    boxes.forEach((box) => {
      const row = bandRows[bandRows.length - 1];
      const used = row ? row.reduce((w, b) => w + boxWidth(b) + BOX_GAP, MARGIN) : 0;
      const alone = box === "outside" && bandRows.length > 1;
      if (!row || alone || used + boxWidth(box) > width - MARGIN) bandRows.push([box]); else row.push(box);
    });
    const topRows = ROW_ORDER_TOP.length;
    let y = MARGIN + topRows * (CHIP_H + ROW_GAP);
    const bandTop = y;
    const boxGeom = new Map();
    let bandRight = 0;
    bandRows.forEach((rowBoxes) => {
      let rows = 1;
      rowBoxes.forEach((box) => {
        const map = boxSlots.get(box);
        let max = -1;
        map.forEach((slot) => { if (slot > max) max = slot; });
        rows = Math.max(rows, Math.floor(max / colsOf(box)) + 1);
      });
      const height = HEAD + PAD + rows * (POD_H + GAP);
      let x = MARGIN;
      rowBoxes.forEach((box) => {
        boxGeom.set(box, { x, y, w: boxWidth(box), h: height });
        x += boxWidth(box) + BOX_GAP;
      });
      bandRight = Math.max(bandRight, x - BOX_GAP);
      y += height + BOX_GAP;
    });
    const bandBottom = y - BOX_GAP;
    const selectedBoxes = boxes.filter((b) => b !== "outside");
    const firstRow = bandRows[0].filter((b) => b !== "outside");
    const center = MARGIN + Math.max(boxWidth("node"), firstRow.reduce((w, b) => w + boxWidth(b) + BOX_GAP, -BOX_GAP)) / 2;
    // Positions of items inside boxes.
    const pos = new Map();
    items.forEach((map, box) => {
      const g = boxGeom.get(box);
      if (!g) return;
      map.forEach((item, key) => {
        item.x = g.x + PAD + (item.slot % colsOf(box)) * (POD_W + GAP);
        item.y = g.y + HEAD + Math.floor(item.slot / colsOf(box)) * (POD_H + GAP);
        item.w = POD_W; item.h = POD_H;
        pos.set(key, item);
      });
    });
    // Chip rows above and below the band.
    const rowY = { workload: MARGIN, replicasets: MARGIN + CHIP_H + ROW_GAP };
    let below = bandBottom + ROW_GAP + 12;
    const hasKind = (kind) => Array.from(model.nodes.values()).some((n) => n.kind === kind);
    ROW_ORDER_BOTTOM.forEach((row) => {
      rowY[row] = below;
      const used = row === "clients" ? traffic.running : row === "ingresses" ? hasKind("Ingress") : true;
      if (used) below += CHIP_H + ROW_GAP;
    });
    const chips = []; // in the model's order: the configured Service first
    model.nodes.forEach((n) => {
      const row = ROWS[n.kind];
      if (row) chips.push({ type: "chip", node: n, row });
    });
    const present = new Map();
    chips.forEach((chip) => {
      if (!present.has(chip.row)) present.set(chip.row, new Set());
      present.get(chip.row).add(chip.node.id);
    });
    rowSlots.forEach((map, row) => {
      Array.from(map.keys()).forEach((id) => { if (!(present.get(row) || new Set()).has(id)) map.delete(id); });
    });
    chips.forEach((chip) => {
      if (!rowSlots.has(chip.row)) rowSlots.set(chip.row, new Map());
      const slot = slotIn(rowSlots.get(chip.row), chip.node.id);
      chip.x = centeredSlotX(slot, center);
      chip.y = rowY[chip.row];
      chip.w = CHIP_W; chip.h = CHIP_H;
      pos.set(chip.node.id, chip);
    });
    // The traffic client, under the Service or Ingress it sends to. The run names its target
    // as the traffic panel's select does: "<service> :<port> …" or "ingress <name> → <service>".
    let client = null;
    if (traffic.running) {
      const words = String(traffic.target || "").split(" ");
      const viaIngress = words[0] === "ingress";
      const ingress = viaIngress ? pos.get("Ingress/" + words[1]) : null;
      const service = pos.get("Service/" + (viaIngress ? words[3] : words[0])) ||
        chips.find((c) => c.node.kind === "Service");
      const target = ingress || service;
      const node = { id: "Client/client", kind: "Client", name: "client" };
      client = { type: "chip", node, row: "clients", x: target ? target.x : centeredSlotX(0, center),
        y: rowY.clients, w: CHIP_W, h: CHIP_H, target, service, viaIngress };
      pos.set(node.id, client);
    }
    const heightTotal = Math.max(below - ROW_GAP, bandBottom) + MARGIN;
    const widthTotal = Math.max(bandRight, ...chips.map((c) => c.x + c.w), client ? client.x + client.w : 0) + MARGIN;
    return { items, groups, boxGeom, boxes, pos, chips, client, bandTop, bandBottom, selectedBoxes,
      width: widthTotal, height: heightTotal };
  }

  // --- drawing helpers ------------------------------------------------------------------------
  function el(tag, attrs, text) {
    const node = document.createElementNS(NS, tag);
    Object.entries(attrs || {}).forEach(([k, v]) => node.setAttribute(k, v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function short(name, max) {
    if (name.length <= max) return name;
    const tail = Math.ceil(max * 0.55);
    return name.slice(0, max - tail - 1) + "…" + name.slice(-tail);
  }

  // Texts wider than their chip are squeezed to fit. Measured on a canvas with the same font
  // as topology.css gives them, so no page layout is forced.
  let toFit = [];
  const measure = document.createElement("canvas").getContext("2d");
  const FONTS = { name: "600 12px system-ui, sans-serif", podName: "600 11.5px system-ui, sans-serif",
    sub: "10.5px system-ui, sans-serif" };
  function squeeze(text, room, font) {
    measure.font = font;
    if (measure.measureText(text.textContent).width > room) {
      text.setAttribute("textLength", room);
      text.setAttribute("lengthAdjust", "spacingAndGlyphs");
    }
    return text;
  }

  function fitTexts() {
    toFit.forEach((g) => {
      const rect = g.querySelector("rect");
      if (!rect) return;
      const width = Number(rect.getAttribute("width"));
      const small = g.classList.contains("pod") || g.classList.contains("group");
      g.querySelectorAll("text.name, text.sub").forEach((t) => {
        measure.font = t.classList.contains("sub") ? FONTS.sub : small ? FONTS.podName : FONTS.name;
        const room = width - 2 * Number(t.getAttribute("x"));
        if (measure.measureText(t.textContent).width > room) {
          t.setAttribute("textLength", room);
          t.setAttribute("lengthAdjust", "spacingAndGlyphs");
        }
      });
    });
    toFit = [];
  }

  // Create or update one element by key; build() makes it, sig says whether it must be redrawn.
  function put(layer, key, sig, build, seen) {
    seen.add(key);
    let entry = drawn.get(key);
    if (entry && entry.sig === sig) return entry;
    const fresh = build();
    if (!initial && !bornAt.has(key) && !entry) {
      bornAt.set(key, performance.now());
      fresh.classList.add("entering");
    }
    if (entry && entry.el.classList.contains("entering") && performance.now() - (bornAt.get(key) || 0) < ENTER_MS) {
      fresh.classList.add("entering");
    }
    if (entry) entry.el.replaceWith(fresh); else layer.append(fresh);
    toFit.push(fresh);
    entry = { el: fresh, sig };
    drawn.set(key, entry);
    return entry;
  }

  function chipFacts(n) {
    switch (n.kind) {
      case "Deployment": return n.desired + " desired · " + n.current + " current · " + n.ready + " ready";
      case "ReplicaSet": return "rev " + (n.revision || "?") + " · " + n.desired + " desired · " + n.current + " current";
      case "Service": return n.type + " " + (n.clusterIP || "") + " · " + n.ports;
      case "Ingress": return [n.ingressClass, n.hosts && n.hosts !== "*" ? n.hosts : "any host", n.address]
        .filter(Boolean).join(" · ");
      case "HorizontalPodAutoscaler":
        return "replicas " + n.replicas + " → " + n.desired + " (" + n.min + "–" + n.max + ")" +
          (n.target ? " · cpu " + (n.utilization || "?") + "/" + n.target : "");
      case "Client": {
        if (traffic.mode === "keepalive") {
          const n2 = traffic.connections.length;
          const ingress = String(traffic.target || "").startsWith("ingress ");
          return "keep-alive · " + n2 + " live connection" + (n2 === 1 ? "" : "s") +
            (ingress ? " · " + Math.round(totalRate()) + " req/s" : "");
        }
        return "new connection per request · " + Math.round(totalRate()) + " req/s";
      }
      default: return "";
    }
  }

  function totalRate() {
    return Object.values(traffic.rates || {}).reduce((a, b) => a + b, 0);
  }

  function drawChip(chip, seen) {
    const n = chip.node;
    const facts = chipFacts(n);
    const title = n.kind + " " + n.name + (n.image ? " · image " + n.image : "") + (n.selector ? " · selector " + n.selector : "");
    const sig = [chip.x, chip.y, n.name, facts, title].join("|");
    put(layers.nodes, n.id, sig, () => {
      const g = el("g", { class: "topo-node chip kind-" + n.kind, "data-kind": n.kind, "data-name": n.name,
        "data-id": n.id, transform: "translate(" + chip.x + "," + chip.y + ")" });
      if (n.kind === "ReplicaSet") g.setAttribute("data-revision", n.revision || "");
      g.append(el("rect", { width: chip.w, height: chip.h, rx: 8 }),
        el("text", { class: "kind", x: 10, y: 13 }, KIND_LABEL[n.kind] || n.kind),
        el("text", { class: "name", x: 10, y: 27 }, short(n.name, 28)),
        el("text", { class: "sub", x: 10, y: 40 }, facts),
        el("title", {}, title));
      return g;
    }, seen);
  }

  function drawPod(item, seen) {
    const p = item.pod;
    const zone = p.selected ? "selected" : "outside";
    const sub = p.status === "Running" && !p.ready ? "Running · not ready" : p.status + (p.ip ? " · " + p.ip : "");
    const cls = "topo-node pod tone-" + p.tone + (p.ready ? " ready" : " unready") + (item.leaving ? " leaving" : "");
    const sig = [item.x, item.y, p.name, sub, cls, p.node, zone].join("|");
    const entry = put(layers.nodes, p.id, sig, () => {
      const g = el("g", { class: cls, "data-kind": "Pod", "data-name": p.name, "data-id": p.id,
        "data-status": p.status, "data-ready": String(p.ready), "data-selected": String(p.selected),
        "data-zone": zone, "data-node": p.node, transform: "translate(" + item.x + "," + item.y + ")" });
      g.append(el("rect", { width: POD_W, height: POD_H, rx: 6 }),
        el("text", { class: "name", x: 8, y: 16 }, short(p.name, 30)),
        el("text", { class: "sub", x: 8, y: 31 }, short(sub, 34)),
        el("title", {}, p.name + " · " + p.status + (p.ready ? " · ready" : " · not ready") + " · node " + p.node +
          (p.ip ? " · " + p.ip : "") + (p.selected ? "" : " · outside the selector (app=" + (p.app || "none") + ")")));
      return g;
    }, seen);
    entry.pod = p;
  }

  function drawGroup(item, seen) {
    const grp = item.group;
    const counts = { ready: 0, pending: 0, terminating: 0, bad: 0 };
    grp.pods.forEach((p) => {
      if (p.tally) {
        counts.ready += p.tally[0]; counts.pending += p.tally[1];
        counts.terminating += p.tally[2]; counts.bad += p.tally[3];
      } else if (p.tone === "terminating") counts.terminating += 1;
      else if (p.tone === "bad") counts.bad += 1;
      else if (p.tone === "ok" && p.ready) counts.ready += 1;
      else counts.pending += 1;
    });
    const owner = grp.selected ? (grp.owner ? "rs " + grp.owner.split("-").slice(-1)[0] : "no ReplicaSet") : "app=" + (grp.app || "none");
    const total = weigh(grp.pods);
    const label = (grp.open ? "▾ " : "▸ ") + owner + " · " + total + " pods";
    const sub = [counts.ready && counts.ready + " ready", counts.pending && counts.pending + " starting",
      counts.terminating && counts.terminating + " terminating", counts.bad && counts.bad + " failing"]
      .filter(Boolean).join(" · ");
    const name = grp.selected ? grp.box + "/" + (grp.owner || "-") : "app=" + (grp.app || "-");
    const sig = [item.x, item.y, label, sub, grp.open].join("|");
    put(layers.nodes, grp.key, sig, () => {
      const g = el("g", { class: "topo-node group", "data-kind": "PodGroup", "data-name": name, "data-id": grp.key,
        "data-count": String(total), "data-ready": String(counts.ready), tabindex: "0", role: "button",
        "aria-expanded": String(grp.open),
        "data-zone": grp.selected ? "selected" : "outside", transform: "translate(" + item.x + "," + item.y + ")" });
      g.append(el("rect", { width: POD_W, height: POD_H, rx: 6 }),
        el("text", { class: "name", x: 8, y: 16 }, short(label, 26)),
        el("text", { class: "sub", x: 8, y: 31 }, short(sub, 30)));
      // a bar of the group's pods by state
      let x = 0;
      [["ready", counts.ready], ["pending", counts.pending], ["terminating", counts.terminating], ["bad", counts.bad]]
        .forEach(([cls, count]) => {
          if (!count) return;
          const w = (POD_W - 12) * count / total;
          g.append(el("rect", { class: "bar bar-" + cls, x: 6 + x, y: POD_H - 5, width: w, height: 3 }));
          x += w;
        });
      g.append(el("title", {}, grp.open ? "Click to fold these pods into one group again"
        : "Click to show these " + total + " pods one by one"));
      const toggle = () => {
        if (expanded.has(grp.key)) expanded.delete(grp.key); else expanded.add(grp.key);
        schedule();
      };
      g.addEventListener("click", toggle);
      g.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") toggle(); });
      return g;
    }, seen);
  }

  function drawBox(name, g, count, seen) {
    const outside = name === "outside";
    const label = outside ? "outside the selector · " + count
      : "node " + name + " · " + count + " pod" + (count === 1 ? "" : "s");
    const sig = [g.x, g.y, g.w, g.h, label].join("|");
    put(layers.zones, "box:" + name, sig, () => {
      const box = el("g", { class: "topo-box" + (outside ? " outside" : ""), "data-kind": outside ? "Outside" : "Node",
        "data-name": name, "data-zone": outside ? "outside" : "selected",
        transform: "translate(" + g.x + "," + g.y + ")" });
      box.append(el("rect", { width: g.w, height: g.h, rx: 8 }));
      return box;
    }, seen);
    put(layers.labels, "boxlabel:" + name, sig, () => squeeze(el("text", {
      class: "box-label" + (outside ? " outside" : ""), x: g.x + 10, y: g.y + 16 }, label), g.w - 20,
    "600 11px system-ui, sans-serif"), seen);
  }

  function firstServiceSelector() {
    for (const n of model.nodes.values()) if (n.kind === "Service" && n.selector) return n.selector;
    return "";
  }

  // --- edges ----------------------------------------------------------------------------------
  function anchor(item, side) {
    return { x: item.x + item.w / 2, y: side === "top" ? item.y : item.y + item.h };
  }

  function curveTo(a, b) {
    const mid = (a.y + b.y) / 2;
    return "C" + a.x + " " + mid + " " + b.x + " " + mid + " " + b.x + " " + b.y;
  }

  function curve(a, b) { return "M" + a.x + " " + a.y + " " + curveTo(a, b); }

  function edgePath(from, to) {
    if (from.row === "workload" && to.row === "workload") { // HPA beside the Deployment
      const left = from.x < to.x;
      const a = { x: left ? from.x + from.w : from.x, y: from.y + from.h / 2 };
      const b = { x: left ? to.x : to.x + to.w, y: to.y + to.h / 2 };
      return "M" + a.x + " " + a.y + " L" + b.x + " " + b.y;
    }
    const fromBelow = from.y > to.y;
    return fromBelow ? curve(anchor(from, "top"), anchor(to, "bottom")) : curve(anchor(from, "bottom"), anchor(to, "top"));
  }

  function drawEdges(L, seen) {
    // Model edges, folded onto what is visible (a collapsed group takes its pods' edges).
    const folded = new Map();
    const owned = [];
    model.nodes.forEach((n) => {
      if (n.kind === "Pod" && n.owner && model.nodes.has("ReplicaSet/" + n.owner)) {
        owned.push({ from: "ReplicaSet/" + n.owner, to: n.id, state: "owns" });
      }
    });
    owned.concat(Array.from(model.edges.values())).forEach((e) => {
      const from = visibleKey(e.from), to = visibleKey(e.to);
      if (!L.pos.has(from) || !L.pos.has(to)) return;
      const key = from + ">" + to + "|" + e.state;
      const f = folded.get(key);
      if (f) f.count += 1; else folded.set(key, { from, to, state: e.state, count: 1 });
    });
    folded.forEach((f, key) => {
      const a = L.pos.get(f.from), b = L.pos.get(f.to);
      const d = edgePath(a, b);
      const label = f.count > 1 ? String(f.count) : "";
      put(layers.edges, "edge:" + key, d + "|" + label, () => {
        const path = el("path", { class: "topo-edge state-" + f.state, d, "data-from": f.from, "data-to": f.to,
          "data-state": f.state, "data-count": String(f.count) });
        return path;
      }, seen);
      if (label) { // the middle of the curve
        const p = a.y > b.y ? [anchor(a, "top"), anchor(b, "bottom")] : [anchor(a, "bottom"), anchor(b, "top")];
        const mid = { x: (p[0].x + p[1].x) / 2, y: (p[0].y + p[1].y) / 2 + 4 };
        put(layers.labels, "elabel:" + key, mid.x + "|" + mid.y + "|" + label,
          () => el("text", { class: "edge-label count", x: mid.x, y: mid.y }, label), seen);
      }
    });
    if (!L.client) return;
    // Traffic: the client, its connections (keep-alive) or the request flow (new connections).
    // Through a Service a keep-alive connection is pinned to one pod; through an Ingress it ends
    // at the proxy, which balances each request: then, as for new connections, the pods' flows.
    const client = L.client, service = client.service, target = client.target;
    drawChip(client, seen);
    if (!target) return;
    if (traffic.mode === "keepalive" && client.viaIngress) {
      const conns = traffic.connections.slice().sort((x, y) => x.lane - y.lane);
      conns.forEach((c, i) => {
        const dx = (i - (conns.length - 1) / 2) * 5;
        const d = curve({ x: client.x + client.w / 2 + dx, y: client.y },
          { x: target.x + target.w / 2 + dx, y: target.y + target.h });
        put(layers.edges, "conn:" + c.lane, d + "|" + target.node.id + "|" + c.conn, () => el("path", {
          class: "topo-edge state-connection lane-" + (c.lane % 8), d, "data-from": client.node.id,
          "data-to": target.node.id, "data-state": "connection", "data-lane": String(c.lane),
          "data-conn": String(c.conn) }), seen);
      });
    } else if (traffic.mode === "keepalive") {
      const conns = traffic.connections.slice().sort((x, y) => x.lane - y.lane);
      conns.forEach((c, i) => {
        const podKey = visibleKey("Pod/" + c.pod);
        const pod = L.pos.get(podKey);
        if (!pod) return;
        // client → through the Service's proxy → the pod the connection is pinned to
        const dx = (i - (conns.length - 1) / 2) * 5;
        const a = { x: client.x + client.w / 2 + dx, y: client.y };
        const sb = { x: service.x + service.w / 2 + dx, y: service.y + service.h };
        const st = { x: sb.x, y: service.y };
        const b = { x: pod.x + pod.w / 2 + dx / 2, y: pod.y + pod.h };
        const d = curve(a, sb) + " L" + st.x + " " + st.y + " " + curveTo(st, b);
        put(layers.edges, "conn:" + c.lane, d + "|" + podKey + "|" + c.conn, () => {
          const path = el("path", { class: "topo-edge state-connection lane-" + (c.lane % 8), d,
            "data-from": client.node.id, "data-to": podKey, "data-state": "connection", "data-lane": String(c.lane),
            "data-conn": String(c.conn) });
          path.append(el("title", {}, "connection " + (c.lane + 1) + " → " + c.pod + " (pinned: keep-alive reuses it)"));
          return path;
        }, seen);
        const same = conns.filter((o) => visibleKey("Pod/" + o.pod) === podKey);
        const left = b.x < st.x; // the label goes on the side the edge does not leave towards
        const at = { x: b.x + (left ? -6 : 6), y: b.y + 14 + 12 * same.indexOf(c) };
        const text = "conn " + (c.lane + 1);
        put(layers.labels, "clabel:" + c.lane, at.x + "|" + at.y + "|" + text, () => el("text", {
          class: "edge-label conn lane-" + (c.lane % 8), x: at.x, y: at.y,
          "text-anchor": left ? "end" : "start" }, text), seen);
      });
      return;
    } else {
      const total = totalRate();
      const sd = edgePath(client, target);
      put(layers.edges, "flow:client", sd + "|" + Math.round(total), () => el("path", {
        class: "topo-edge state-flow", d: sd, "data-from": client.node.id, "data-to": target.node.id,
        "data-state": "flow", "data-rate": String(Math.round(total)) }), seen);
    }
    if (!service) return;
    const rates = new Map();
    Object.entries(traffic.rates || {}).forEach(([pod, rate]) => {
      const key = visibleKey("Pod/" + pod);
      rates.set(key, (rates.get(key) || 0) + rate);
    });
    rates.forEach((rate, key) => {
      const pod = L.pos.get(key);
      if (!pod) return;
      const d = edgePath(service, pod);
      const widthClass = "w" + Math.min(5, 1 + Math.floor(rate / 25));
      const text = Math.round(rate) + " req/s";
      put(layers.edges, "flow:" + key, d + "|" + widthClass + "|" + Math.round(rate), () => el("path", {
        class: "topo-edge state-flow " + widthClass, d, "data-from": service.node.id, "data-to": key,
        "data-state": "flow", "data-rate": String(Math.round(rate)) }), seen);
      const at = anchor(pod, "bottom");
      const left = at.x < service.x + service.w / 2;
      put(layers.labels, "flabel:" + key, at.x + "|" + at.y + "|" + text, () => el("text", {
        class: "edge-label rate", x: at.x + (left ? -6 : 6), y: at.y + 14, "text-anchor": left ? "end" : "start" },
      text), seen);
    });
  }

  // --- render ---------------------------------------------------------------------------------
  function render() {
    const started = performance.now();
    const L = layout();
    const seen = new Set();
    svg.setAttribute("width", L.width);
    svg.setAttribute("height", L.height);
    svg.setAttribute("viewBox", "0 0 " + L.width + " " + L.height);
    // the Service's selection: a dashed outline around the node boxes
    const selBoxes = L.selectedBoxes.map((b) => L.boxGeom.get(b)).filter(Boolean);
    if (selBoxes.length) {
      const x0 = Math.min(...selBoxes.map((g) => g.x)) - 6, y0 = Math.min(...selBoxes.map((g) => g.y)) - 6;
      const x1 = Math.max(...selBoxes.map((g) => g.x + g.w)) + 6, y1 = Math.max(...selBoxes.map((g) => g.y + g.h)) + 6;
      const selector = firstServiceSelector();
      put(layers.zones, "selection", [x0, y0, x1, y1, selector].join("|"), () => {
        const g = el("g", { class: "topo-selection", "data-zone": "selected" });
        g.append(el("rect", { x: x0, y: y0, width: x1 - x0, height: y1 - y0, rx: 10 }),
          el("text", { x: x1 - 8, y: y0 - 5, "text-anchor": "end" }, selector ? "selected by " + selector : ""));
        return g;
      }, seen);
    }
    const counts = new Map();
    L.items.forEach((map, box) => {
      let n = 0;
      map.forEach((item) => { if (!item.leaving) n += item.type === "group" ? weigh(item.group.pods) : weight(item.pod); });
      counts.set(box, n);
    });
    L.boxes.forEach((box) => { if (L.boxGeom.has(box)) drawBox(box, L.boxGeom.get(box), counts.get(box) || 0, seen); });
    L.chips.forEach((chip) => drawChip(chip, seen));
    L.items.forEach((map) => map.forEach((item) => {
      if (item.type === "group") drawGroup(item, seen); else drawPod(item, seen);
    }));
    drawEdges(L, seen);
    drawn.forEach((entry, key) => {
      if (!seen.has(key)) { entry.el.remove(); drawn.delete(key); bornAt.delete(key); }
    });
    fitTexts();
    shownPods = new Set(podsOf(() => true).map((p) => p.id));
    root.dataset.seq = String(model.seq);
    root.dataset.grouped = String(grouped);
    root.dataset.renderMs = (performance.now() - started).toFixed(1);
    if (initial) {
      root.dataset.firstRenderAt = performance.now().toFixed(1);
      root.dataset.firstRenderMs = root.dataset.renderMs;
    }
    initial = false;
    if (leaving.size) setTimeout(schedule, LEAVE_MS / 2);
  }

  const startedAt = performance.now();
  readPatch();
  render();
  root.dataset.initMs = (performance.now() - startedAt).toFixed(1); // parse the page's graph + first render
})();
