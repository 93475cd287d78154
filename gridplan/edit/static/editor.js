/* gridplan edit — the editor page.
 *
 * Plain modern JavaScript (no build step). Talks to the local gridplan server through the JSON API
 * documented in docs/editor.md. Every text that comes from the data (names of managers, 台区,
 * townships, notes) is inserted with textContent / text nodes, never as markup.
 *
 * Map: Leaflet (vendored from npm). 台区 are drawn by one canvas layer of our own, so 10,000 points
 * redraw in a few milliseconds; selection by click, lasso (leaflet-lasso), rectangle (leaflet-draw's
 * rectangle handler) or brush painting.
 */
(function () {
  "use strict";

  // ------------------------------------------------------------------ constants & helpers
  const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1",
                   "#ff9da7", "#9c755f", "#bab0ac"];
  const TOKEN_KEY = "gridplan-edit-token";
  const EXPORT_LABEL = { plan: "方案 plan.gpkg", roster: "名册 roster.xlsx", map: "地图 map.html",
                         wallmap: "墙图" };

  const byId = (id) => document.getElementById(id);

  /** Create an element; string/number children become text nodes (never parsed as markup). */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v === undefined || v === null || v === false) continue;
        if (k === "className") node.className = v;
        else if (k === "text") node.textContent = String(v);
        else if (k === "dataset") Object.assign(node.dataset, v);
        else if (k === "style") Object.assign(node.style, v);
        else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
        else node.setAttribute(k, v === true ? "" : String(v));
      }
    }
    for (const c of children) {
      if (c === undefined || c === null || c === false) continue;
      node.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  function fmtInt(x) { return Number.isFinite(+x) ? String(Math.round(+x)) : "–"; }
  function fmtNum(x, d) { return Number.isFinite(+x) ? (+x).toFixed(d) : "–"; }
  function fmtShare(x) {
    if (x === null || x === undefined || !Number.isFinite(+x)) return "–";
    return (+x * 100).toFixed(+x >= 0.9995 || +x === 0 ? 0 : 1) + "%";
  }

  const now = () => performance.now();
  const nextFrame = () => new Promise((r) => requestAnimationFrame(() => r()));

  // ------------------------------------------------------------------ API
  function token() {
    const u = new URL(location.href);
    const t = u.searchParams.get("token");
    if (t) { sessionStorage.setItem(TOKEN_KEY, t); return t; }
    return sessionStorage.getItem(TOKEN_KEY) || "";
  }
  const TOKEN = token();

  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.error) || `请求失败（HTTP ${status}）`);
      this.status = status;
      this.detail = body && body.detail;
      this.code = body && body.code;
    }
  }

  async function api(path, { method = "GET", body } = {}) {
    const opts = { method, headers: { "X-Gridplan-Token": TOKEN }, credentials: "same-origin" };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, opts);
    } catch (err) {
      throw new ApiError(0, { error: "无法连接编辑服务（gridplan edit 是否仍在运行？）", detail: String(err) });
    }
    const type = res.headers.get("Content-Type") || "";
    if (!type.includes("json")) {
      if (!res.ok) throw new ApiError(res.status, null);
      return res;
    }
    const data = await res.json();
    if (!res.ok) throw new ApiError(res.status, data);
    return data;
  }

  // ------------------------------------------------------------------ state
  const S = {
    countyName: "", params: {}, stations: [], townships: [], townshipById: new Map(),
    managers: [], managerById: new Map(),
    grids: new Map(),             // grid_id -> GeoJSON feature
    tx: null,                     // column arrays
    idx: new Map(),               // transformer_id -> index
    n: 0,
    kpi: {}, history: {}, store: {}, dirty: false,
    selected: null,               // Uint8Array(n)
    nSelected: 0,
    marked: null,                 // Uint8Array(n): 台区 highlighted by a preview / compare
    target: null,                 // manager_id chosen in the picker
    tool: "pan",
    busy: false,
    review: null,                 // {kind: "rebalance"|"compare", ...}
    colourOf: new Map(),          // manager_id -> colour
    activeGrid: null,
  };

  // ------------------------------------------------------------------ map & layers
  let map, gridLayer, labelPane, outlineLayer, stationLayer, highlightLayer, previewLayer, points;
  const gridLayers = new Map();   // grid_id -> its L.Polygon in gridLayer (one L.GeoJSON for all)
  const labels = new Map();       // grid_id -> L.Tooltip
  const rows = new Map();         // grid_id -> <tr>
  let lasso = null, rectDraw = null;

  /** "#rrggbb" -> the little-endian RGBA word of an ImageData pixel (opaque). */
  function packColour(hex) {
    const v = parseInt(hex.slice(1), 16);
    return ((255 << 24) | ((v & 0xff) << 16) | (v & 0xff00) | ((v >> 16) & 0xff)) >>> 0;
  }

  const masks = new Map();
  /** Pixel offsets of a disc of radius R: its inside and an outline `edge` pixels wide. */
  function discMask(R, edge) {
    const key = R * 100 + edge;
    let m = masks.get(key);
    if (m) return m;
    const fill = [], ring = [];
    for (let dy = -R; dy <= R; dy++) {
      for (let dx = -R; dx <= R; dx++) {
        const d = Math.sqrt(dx * dx + dy * dy);
        if (d > R + 0.35) continue;
        if (d > R - edge + 0.35) ring.push(dx, dy); else fill.push(dx, dy);
      }
    }
    m = { fill: Int16Array.from(fill), edge: Int16Array.from(ring) };
    masks.set(key, m);
    return m;
  }

  /** One canvas for all 台区: draws, hit-tests and answers polygon / rectangle / circle queries. */
  const PointsLayer = L.Layer.extend({
    onAdd(m) {
      this._canvas = L.DomUtil.create("canvas", "gp-points leaflet-zoom-hide");
      this._canvas.style.pointerEvents = "none";
      m.getPane("gpPoints").appendChild(this._canvas);
      this._ctx = this._canvas.getContext("2d");
      m.on("moveend zoomend resize viewreset", this._reset, this);
      m.on("zoomstart", this._hide, this);
      this._reset();
    },
    onRemove(m) {
      m.off("moveend zoomend resize viewreset", this._reset, this);
      m.off("zoomstart", this._hide, this);
      L.DomUtil.remove(this._canvas);
    },
    setData(lon, lat) {
      const n = lon.length;
      this.wx = new Float64Array(n); this.wy = new Float64Array(n);
      this.sx = new Float32Array(n); this.sy = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        const p = L.CRS.EPSG3857.latLngToPoint(L.latLng(lat[i], lon[i]), 0);
        this.wx[i] = p.x; this.wy[i] = p.y;
      }
      if (this._map) this._reset();
    },
    _hide() { this._canvas.style.visibility = "hidden"; },
    _reset() {
      const m = this._map;
      const size = m.getSize();
      const topLeft = m.containerPointToLayerPoint([0, 0]);
      L.DomUtil.setPosition(this._canvas, topLeft);
      const dpr = window.devicePixelRatio || 1;
      if (this._w !== size.x || this._h !== size.y || this._dpr !== dpr) {
        this._canvas.width = Math.round(size.x * dpr);
        this._canvas.height = Math.round(size.y * dpr);
        this._canvas.style.width = size.x + "px";
        this._canvas.style.height = size.y + "px";
        this._w = size.x; this._h = size.y; this._dpr = dpr;
      }
      this._canvas.style.visibility = "visible";
      this.redraw();
    },
    radius() {
      const z = this._map.getZoom();
      return Math.max(1.6, Math.min(6, 1.6 + (z - 10) * 0.9));
    },
    /** Recompute screen coordinates of every point and paint them.
     *
     * Painted pixel by pixel into one ImageData (discs from precomputed masks): much cheaper than
     * 10,000 canvas arcs, whose rasterisation would cost a frame of its own. */
    redraw() {
      if (!this._map || !this.wx) return;
      const m = this._map, n = this.wx.length;
      const scale = m.getZoomScale(m.getZoom(), 0);
      const origin = m.getPixelOrigin();
      const topLeft = m.containerPointToLayerPoint([0, 0]);
      const ox = origin.x + topLeft.x, oy = origin.y + topLeft.y;
      const sx = this.sx, sy = this.sy, wx = this.wx, wy = this.wy;
      for (let i = 0; i < n; i++) { sx[i] = wx[i] * scale - ox; sy[i] = wy[i] * scale - oy; }
      const dpr = this._dpr, W = this._canvas.width, H = this._canvas.height;
      if (!this._img || this._img.width !== W || this._img.height !== H) {
        this._img = this._ctx.createImageData(W, H);
        this._buf = new Uint32Array(this._img.data.buffer);
      }
      const buf = this._buf;
      buf.fill(0);
      const R = Math.max(1, Math.round(this.radius() * dpr));
      const base = discMask(R, Math.max(1, Math.round(0.8 * dpr)));
      const mgr = S.tx.manager_id, dark = packColour("#263238");
      const put = (i, mask, fill, edge) => {
        const px = Math.round(sx[i] * dpr), py = Math.round(sy[i] * dpr);
        if (px < -40 || py < -40 || px > W + 40 || py > H + 40) return;
        const f = mask.fill, e = mask.edge;
        if (fill) for (let k = 0; k < f.length; k += 2) {
          const x = px + f[k], y = py + f[k + 1];
          if (x >= 0 && y >= 0 && x < W && y < H) buf[y * W + x] = fill;
        }
        for (let k = 0; k < e.length; k += 2) {
          const x = px + e[k], y = py + e[k + 1];
          if (x >= 0 && y >= 0 && x < W && y < H) buf[y * W + x] = edge;
        }
      };
      const packed = new Map();
      for (let i = 0; i < n; i++) {
        let c = packed.get(mgr[i]);
        if (c === undefined) { c = packColour(colourOf(mgr[i])); packed.set(mgr[i], c); }
        put(i, base, c, dark);
      }
      const mark = S.marked, sel = S.selected;
      if (mark) {
        const ring = discMask(R + Math.round(4 * dpr), Math.round(2 * dpr));
        const c = packColour("#d500f9");
        for (let i = 0; i < n; i++) if (mark[i]) put(i, ring, 0, c);
      }
      if (sel && S.nSelected) {
        const big = discMask(R + Math.round(1.5 * dpr), Math.max(1, Math.round(1.6 * dpr)));
        const y = packColour("#ffeb3b"), r = packColour("#d50000");
        for (let i = 0; i < n; i++) if (sel[i]) put(i, big, y, r);
      }
      if (this.hover !== undefined && this.hover >= 0) {
        put(this.hover, discMask(R + Math.round(5 * dpr), Math.round(2 * dpr)), 0, packColour("#000000"));
      }
      this._ctx.putImageData(this._img, 0, 0);
    },
    /** Index of the point nearest to a container point within `tol` pixels, or -1. */
    nearest(x, y, tol) {
      let best = -1, bd = tol * tol;
      const sx = this.sx, sy = this.sy;
      for (let i = 0; i < sx.length; i++) {
        const dx = sx[i] - x, dy = sy[i] - y, d = dx * dx + dy * dy;
        if (d <= bd) { bd = d; best = i; }
      }
      return best;
    },
    inCircle(x, y, rad) {
      const out = [], r2 = rad * rad, sx = this.sx, sy = this.sy;
      for (let i = 0; i < sx.length; i++) {
        const dx = sx[i] - x, dy = sy[i] - y;
        if (dx * dx + dy * dy <= r2) out.push(i);
      }
      return out;
    },
    inRect(x0, y0, x1, y1) {
      const out = [], sx = this.sx, sy = this.sy;
      const a = Math.min(x0, x1), b = Math.max(x0, x1), c = Math.min(y0, y1), d = Math.max(y0, y1);
      for (let i = 0; i < sx.length; i++) if (sx[i] >= a && sx[i] <= b && sy[i] >= c && sy[i] <= d) out.push(i);
      return out;
    },
    inPolygon(poly) { // poly: [[x, y], ...] in container pixels
      let a = Infinity, b = -Infinity, c = Infinity, d = -Infinity;
      for (const [x, y] of poly) { a = Math.min(a, x); b = Math.max(b, x); c = Math.min(c, y); d = Math.max(d, y); }
      const out = [], sx = this.sx, sy = this.sy, k = poly.length;
      for (let i = 0; i < sx.length; i++) {
        const x = sx[i], y = sy[i];
        if (x < a || x > b || y < c || y > d) continue;
        let inside = false;
        for (let p = 0, q = k - 1; p < k; q = p++) {
          const [xp, yp] = poly[p], [xq, yq] = poly[q];
          if ((yp > y) !== (yq > y) && x < ((xq - xp) * (y - yp)) / (yq - yp) + xp) inside = !inside;
        }
        if (inside) out.push(i);
      }
      return out;
    },
  });

  // ------------------------------------------------------------------ colours
  function bboxOf(geom) {
    let a = Infinity, b = Infinity, c = -Infinity, d = -Infinity;
    const walk = (co) => {
      if (typeof co[0] === "number") {
        if (co[0] < a) a = co[0]; if (co[0] > c) c = co[0];
        if (co[1] < b) b = co[1]; if (co[1] > d) d = co[1];
      } else for (const x of co) walk(x);
    };
    if (geom && geom.coordinates) walk(geom.coordinates);
    return [a, b, c, d];
  }

  /** Vertices of a geometry as "lon,lat" keys (grids that share one are neighbours). */
  function vertexKeys(geom, out) {
    const walk = (co) => {
      if (typeof co[0] === "number") out.push(co[0].toFixed(6) + "," + co[1].toFixed(6));
      else for (const x of co) walk(x);
    };
    if (geom && geom.coordinates) walk(geom.coordinates);
    return out;
  }

  /** Give every manager with a grid a palette colour that its neighbouring grids do not use. */
  function assignColours(features) {
    const feats = features.slice().sort((x, y) => (x.properties.grid_id < y.properties.grid_id ? -1 : 1));
    const owner = new Map(); // vertex key -> grid indices
    feats.forEach((f, k) => {
      for (const v of vertexKeys(f.geometry, [])) {
        const o = owner.get(v);
        if (!o) owner.set(v, [k]); else if (o[o.length - 1] !== k) o.push(k);
      }
    });
    const nbrs = feats.map(() => new Set());
    for (const o of owner.values()) {
      if (o.length < 2) continue;
      for (const a of o) for (const b of o) if (a !== b) nbrs[a].add(b);
    }
    // most-constrained first: grids with more neighbours pick first
    const order = feats.map((_, k) => k).sort((a, b) => nbrs[b].size - nbrs[a].size || a - b);
    for (const k of order) {
      const m = feats[k].properties.manager_id;
      if (S.colourOf.has(m)) continue;
      const used = new Map();
      for (const j of nbrs[k]) {
        const c = S.colourOf.get(feats[j].properties.manager_id);
        if (c) used.set(c, (used.get(c) || 0) + 1);
      }
      let best = PALETTE.find((c) => !used.has(c));
      if (!best) best = PALETTE.slice().sort((a, b) => used.get(a) - used.get(b))[0];
      S.colourOf.set(m, best);
    }
  }
  function colourOf(managerId) {
    let c = S.colourOf.get(managerId);
    if (!c) { c = PALETTE[S.colourOf.size % PALETTE.length]; S.colourOf.set(managerId, c); }
    return c;
  }

  // ------------------------------------------------------------------ state loading
  function loadState(st) {
    S.countyName = st.county_name || "";
    S.params = st.params || {};
    S.stations = (st.stations || []).slice().sort((a, b) => (a.station_id < b.station_id ? -1 : 1));
    const tws = st.townships && st.townships.features ? st.townships.features : (st.townships || []);
    S.townships = tws.map((f) => (f.properties ? f.properties : f));
    S.townshipById = new Map(S.townships.map((t) => [t.township_id, t]));
    S.managers = st.managers || [];
    S.managerById = new Map(S.managers.map((m) => [m.manager_id, m]));
    S.grids = new Map();
    const feats = (st.grids && st.grids.features) || [];
    for (const f of feats) S.grids.set(f.properties.grid_id, f);
    S.tx = st.transformers;
    S.n = S.tx.transformer_id.length;
    S.idx = new Map(S.tx.transformer_id.map((id, i) => [id, i]));
    S.selected = new Uint8Array(S.n); S.nSelected = 0;
    S.marked = null;
    S.kpi = st.kpi || {}; S.history = st.history || {}; S.store = st.store || {}; S.dirty = !!st.dirty;
    const lt = {}; let t = now();
    const lap = (k) => { const u = now(); lt[k] = Math.round(u - t); t = u; };
    assignColours(feats); lap("colours");

    byId("gp-county").textContent = (S.countyName ? S.countyName + " · " : "") + "网格编辑";
    document.title = (S.countyName ? S.countyName + " – " : "") + "gridplan 网格编辑";
    buildFilters();
    drawBackground(st); lap("background");
    drawAllGrids(); lap("grids");
    points.setData(S.tx.lon, S.tx.lat); lap("points");
    buildPicker();
    renderPanel(); lap("panel");
    renderKpi();
    renderHistory();
    renderStore();
    renderSelection();
    if (window.gridplanEditor) window.gridplanEditor.loadBreakdown = lt;
    if (st.recovery) setTimeout(() => offerRecovery(st.recovery), 0);
  }

  /** The server found a recovery file (unsaved edits of a crashed or killed session): ask. */
  async function offerRecovery(rec) {
    const when = String(rec.saved_at || "").replace("T", " ").slice(0, 19);
    const body = el("div", null, `上次编辑有 ${rec.steps} 步未保存的修改`, when ? `（记录于 ${when}）` : "",
                    "。恢复这些修改，还是丢弃？");
    const choice = await dialog("发现未保存的修改", body, [["稍后决定", "", false], ["丢弃", "discard", false], ["恢复", "recover", true]]);
    if (!choice) return;
    await edit("recovery", "/api/recovery", { action: choice },
               () => (choice === "recover" ? `已恢复 ${rec.steps} 步未保存的修改` : "已丢弃恢复文件"));
  }

  function drawBackground(st) {
    outlineLayer.clearLayers();
    stationLayer.clearLayers();
    if (st.villages && st.villages.features && st.villages.features.length) {
      L.geoJSON(st.villages, { interactive: false, renderer: map._gpRenderer,
        style: { color: "#90a4ae", weight: 0.6, dashArray: "2 3", fill: false } }).addTo(outlineLayer);
    }
    if (st.townships && st.townships.features) {
      L.geoJSON(st.townships, { interactive: false, renderer: map._gpRenderer,
        style: { color: "#263238", weight: 2.4, fill: false, opacity: 0.8 } }).addTo(outlineLayer);
    }
    for (const s of S.stations) {
      if (!Number.isFinite(+s.lon) || !Number.isFinite(+s.lat)) continue;
      const mk = L.marker([+s.lat, +s.lon], { icon: L.divIcon({ className: "gp-station", html: "", iconSize: [14, 14] }),
                                              keyboard: false, zIndexOffset: 1000 });
      mk.bindTooltip(el("span", { className: "gp-tip" }, "供电所：", s.name || s.station_id), { direction: "top" });
      mk.addTo(stationLayer);
    }
  }

  // ------------------------------------------------------------------ grids on the map
  function gridStyle(p) {
    const split = p.contiguous === false || (+p.parts || 1) > 1;
    return {
      fillColor: colourOf(p.manager_id), fillOpacity: 0.38,
      color: p.locked ? "#102027" : split ? "#8e24aa" : "#546e7a",
      weight: p.locked ? 2.6 : split ? 2.4 : 1.1,
      dashArray: p.locked ? "6 4" : null,
    };
  }

  function drawGrid(f) {
    const gid = f.properties.grid_id;
    const old = gridLayers.get(gid);
    if (old) gridLayer.removeLayer(old);
    gridLayer.addData(f); // onEachFeature records the new layer
    drawLabel(f);
  }

  function removeGrid(gid) {
    const old = gridLayers.get(gid);
    if (old) gridLayer.removeLayer(old);
    gridLayers.delete(gid);
    const lb = labels.get(gid);
    if (lb) lb.node.remove();
    labels.delete(gid);
    S.grids.delete(gid);
  }

  /** Label point: the 台区 of the grid nearest to their mean (always inside the grid's territory). */
  function labelPoint(gid) {
    const tx = S.tx;
    let sx = 0, sy = 0, k = 0;
    const members = [];
    for (let i = 0; i < S.n; i++) if (tx.grid_id[i] === gid) { sx += tx.lon[i]; sy += tx.lat[i]; k++; members.push(i); }
    if (!k) return null;
    sx /= k; sy /= k;
    let best = members[0], bd = Infinity;
    for (const i of members) {
      const d = (tx.lon[i] - sx) ** 2 + (tx.lat[i] - sy) ** 2;
      if (d < bd) { bd = d; best = i; }
    }
    return [tx.lat[best], tx.lon[best]];
  }

  /** A grid's label: a plain <span> in the labels pane (text only), placed by updateLabelVisibility. */
  function drawLabel(f, at) {
    const p = f.properties, gid = p.grid_id;
    const old = labels.get(gid);
    if (old) old.node.remove();
    const ll = at || labelPoint(gid);
    if (!ll) { labels.delete(gid); return; }
    const text = String(p.manager_name || p.manager_id || gid);
    const node = el("span", { className: "gp-label" + (p.locked ? " gp-label-locked" : ""), dataset: { gridId: gid } }, text);
    const box = bboxOf(f.geometry);
    const item = { node, ll: L.latLng(ll[0], ll[1]), box, len: text.length, area: (box[2] - box[0]) * (box[3] - box[1]) };
    labels.set(gid, item);
    labelPane.appendChild(node);
  }

  function drawAllGrids() {
    gridLayer.clearLayers(); gridLayers.clear(); labels.clear(); clear(labelPane);
    // label points for every grid in one pass over the 台区
    const acc = new Map();
    const tx = S.tx;
    for (let i = 0; i < S.n; i++) {
      let a = acc.get(tx.grid_id[i]);
      if (!a) { a = { sx: 0, sy: 0, k: 0, members: [] }; acc.set(tx.grid_id[i], a); }
      a.sx += tx.lon[i]; a.sy += tx.lat[i]; a.k++; a.members.push(i);
    }
    let tLayers = 0, tLabels = 0;
    for (const f of S.grids.values()) {
      const gid = f.properties.grid_id;
      const t0 = now();
      gridLayer.addData(f);
      const t1 = now();
      tLayers += t1 - t0;
      const a = acc.get(gid);
      let at = null;
      if (a) {
        const mx = a.sx / a.k, my = a.sy / a.k;
        let best = a.members[0], bd = Infinity;
        for (const i of a.members) {
          const d = (tx.lon[i] - mx) ** 2 + (tx.lat[i] - my) ** 2;
          if (d < bd) { bd = d; best = i; }
        }
        at = [tx.lat[best], tx.lon[best]];
      }
      if (at) drawLabel(f, at);
      tLabels += now() - t1;
    }
    const t2 = now();
    updateLabelVisibility();
    if (window.gridplanEditor) {
      window.gridplanEditor.gridBreakdown = { layers: Math.round(tLayers), labels: Math.round(tLabels), place: Math.round(now() - t2) };
    }
  }

  /** Place the labels; show one when its grid is wide enough on screen and it hits no other. */
  function updateLabelVisibility() {
    const z = map.getZoom();
    const placed = [];
    const items = [...labels.values()].sort((a, b) => b.area - a.area);
    for (const it of items) {
      const b = it.box;
      const p0 = map.project([b[1], b[0]], z), p1 = map.project([b[3], b[2]], z);
      const w = it.len * 12 + 8, h = 17;
      let show = Math.abs(p1.x - p0.x) >= w * 0.8 && Math.abs(p1.y - p0.y) >= h;
      const c = map.latLngToLayerPoint(it.ll);
      if (show) {
        const r = [c.x - w / 2, c.y - h / 2, c.x + w / 2, c.y + h / 2];
        show = !placed.some((q) => r[0] < q[2] && q[0] < r[2] && r[1] < q[3] && q[1] < r[3]);
        if (show) placed.push(r);
      }
      it.node.style.display = show ? "" : "none";
      if (show) it.node.style.transform = `translate(${Math.round(c.x)}px, ${Math.round(c.y)}px) translate(-50%, -50%)`;
    }
    labelPane.style.visibility = "visible";
  }

  function highlightSplits(warnings) {
    highlightLayer.clearLayers();
    for (const w of warnings || []) {
      const f = S.grids.get(w.grid_id);
      if (!f || !f.geometry) continue;
      const polys = f.geometry.type === "MultiPolygon" ? f.geometry.coordinates : [f.geometry.coordinates];
      polys.forEach((poly, k) => {
        const part = { type: "Feature", properties: {}, geometry: { type: "Polygon", coordinates: poly } };
        L.geoJSON(part, { interactive: false, renderer: map._gpRenderer,
          style: { color: "#8e24aa", weight: 4, dashArray: "2 6", fillColor: k % 2 ? "#ce93d8" : "#8e24aa", fillOpacity: 0.25 } })
          .addTo(highlightLayer);
      });
    }
  }

  // ------------------------------------------------------------------ side panel
  function buildFilters() {
    const st = byId("gp-filter-station"), tw = byId("gp-filter-township");
    const keepS = st.value, keepT = tw.value;
    clear(st); st.appendChild(el("option", { value: "" }, "全部"));
    for (const s of S.stations) st.appendChild(el("option", { value: s.station_id }, s.name || s.station_id));
    st.value = S.stations.some((s) => s.station_id === keepS) ? keepS : "";
    fillTownships(keepT);
  }

  function fillTownships(keep) {
    const st = byId("gp-filter-station").value, tw = byId("gp-filter-township");
    clear(tw); tw.appendChild(el("option", { value: "" }, "全部"));
    const list = S.townships.filter((t) => !st || t.station_id === st)
      .sort((a, b) => (a.township_id < b.township_id ? -1 : 1));
    for (const t of list) tw.appendChild(el("option", { value: t.township_id }, t.name || t.township_id));
    tw.value = list.some((t) => t.township_id === keep) ? keep : "";
  }

  function gridVisible(p) {
    const st = byId("gp-filter-station").value, tw = byId("gp-filter-township").value;
    return (!st || p.station_id === st) && (!tw || p.township_id === tw);
  }

  function flagsOf(p) {
    const out = [];
    if (p.over_capacity) out.push(el("span", { className: "gp-flag gp-flag-over", title: "工作量超过容量" }, "超载"));
    const parts = +p.parts || 1;
    if (p.contiguous === false || parts > 1) {
      out.push(el("span", { className: "gp-flag gp-flag-split", title: "网格不连片" }, parts > 1 ? `分${parts}块` : "不连片"));
    }
    const beyond = p.beyond_commitment;
    if (beyond === true || +beyond > 0) {
      out.push(el("span", { className: "gp-flag gp-flag-beyond", title: "超出抢修到达时限承诺的台区" },
                  beyond === true ? "超时" : `超时${fmtInt(beyond)}`));
    }
    return out;
  }

  function fillRow(tr, p) {
    clear(tr);
    tr.dataset.gridId = p.grid_id;
    tr.dataset.managerId = p.manager_id || "";
    tr.dataset.workload = p.workload;
    tr.dataset.customers = p.customers;
    tr.dataset.transformers = p.n_transformers;
    tr.classList.toggle("gp-row-locked", !!p.locked);
    const cap = +p.capacity || +S.params.capacity || 0;
    const share = cap > 0 ? Math.min(1, +p.workload / cap) : 0;
    const tw = S.townshipById.get(p.township_id);
    const name = el("div", { className: "gp-name" },
      el("span", { className: "gp-swatch", style: { background: colourOf(p.manager_id) } }),
      el("span", { className: "gp-mgr" }, p.manager_name || p.manager_id || "（无）"));
    tr.appendChild(el("td", { title: `${p.grid_id}（${tw ? tw.name || tw.township_id : p.township_id || ""}）台区经理 ${p.manager_id || "无"}${p.phone ? " 电话 " + p.phone : ""}` }, name,
      el("span", { className: "gp-gid" }, p.grid_id, p.manager_id ? " · " + p.manager_id : "")));
    tr.appendChild(el("td", null, el("div", { className: "gp-bar" + (p.over_capacity ? " gp-over" : ""),
                                             title: `工作量 ${fmtInt(p.workload)} / 容量 ${fmtInt(cap)}` },
      el("div", { className: "gp-bar-fill", style: { width: (share * 100).toFixed(1) + "%" } }),
      el("span", { className: "gp-bar-text" }, `${fmtInt(p.workload)} / ${fmtInt(cap)}`))));
    tr.appendChild(el("td", { className: "gp-num gp-customers" }, fmtInt(p.customers)));
    tr.appendChild(el("td", { className: "gp-num gp-ntx" }, fmtInt(p.n_transformers)));
    tr.appendChild(el("td", { className: "gp-num gp-hv" }, fmtNum(p.hv_km, 1)));
    tr.appendChild(el("td", { className: "gp-flags" }, ...flagsOf(p)));
    const lockBtn = el("button", { type: "button", className: "gp-lockbtn", "aria-pressed": p.locked ? "true" : "false",
                                   title: p.locked ? "已锁定：点击解锁" : "点击锁定（自动平衡不改动）" }, p.locked ? "已锁" : "锁定");
    lockBtn.addEventListener("click", (ev) => { ev.stopPropagation(); lockGrids([p.grid_id], !p.locked); });
    const tgtBtn = el("button", { type: "button", className: "gp-lockbtn gp-targetbtn", title: "设为指派目标" }, "目标");
    tgtBtn.addEventListener("click", (ev) => { ev.stopPropagation(); if (p.manager_id) chooseTarget(p.manager_id); });
    tr.appendChild(el("td", { className: "gp-actions" }, tgtBtn, " ", lockBtn));
  }

  function sortKey(p) { return `${p.station_id || ""}\u0000${p.township_id || ""}\u0000${p.grid_id}`; }

  const collator = new Intl.Collator("en", { numeric: true });
  let panelOrder = null; // grid ids in panel order; null: to be sorted again

  function renderPanel() {
    const tbody = byId("gp-grid-table").querySelector("tbody");
    const seen = new Set();
    for (const [gid, f] of S.grids) {
      let tr = rows.get(gid);
      if (!tr) {
        panelOrder = null;
        tr = el("tr");
        tr.addEventListener("click", () => focusGrid(tr.dataset.gridId));
        rows.set(gid, tr);
      }
      if (tr._gpProps !== f.properties) { fillRow(tr, f.properties); tr._gpProps = f.properties; }
      seen.add(gid);
    }
    for (const [gid, tr] of rows) if (!seen.has(gid)) { tr.remove(); rows.delete(gid); panelOrder = null; }
    const reorder = panelOrder === null;
    if (reorder) {
      panelOrder = [...S.grids.values()].map((f) => [sortKey(f.properties), f.properties.grid_id])
        .sort((a, b) => collator.compare(a[0], b[0])).map((x) => x[1]);
    }
    let shown = 0, prev = null;
    for (const gid of panelOrder) {
      const tr = rows.get(gid);
      const vis = gridVisible(S.grids.get(gid).properties);
      if (tr.hidden === vis) tr.hidden = !vis;
      if (vis) shown++;
      if (reorder) { // keep DOM order = sorted order, moving only rows out of place
        const want = prev ? prev.nextSibling : tbody.firstChild;
        if (want !== tr) tbody.insertBefore(tr, want);
        prev = tr;
      }
    }
    byId("gp-grid-count").textContent = `${shown} / ${S.grids.size} 个网格`;
    markChangedRows();
  }

  function markChangedRows() {
    const changed = new Set();
    if (S.review && S.review.managers) for (const m of S.review.managers) changed.add(m.manager_id);
    for (const tr of rows.values()) tr.classList.toggle("gp-row-changed", changed.has(tr.dataset.managerId));
  }

  function focusGrid(gid) {
    const f = S.grids.get(gid);
    if (!f) return;
    S.activeGrid = gid;
    for (const [g, tr] of rows) tr.classList.toggle("gp-row-active", g === gid);
    const lyr = gridLayers.get(gid);
    if (lyr) map.fitBounds(lyr.getBounds(), { maxZoom: 15, padding: [30, 30], animate: false });
  }

  function renderKpi() {
    const k = S.kpi || {};
    const set = (key, text, bad) => {
      const box = document.querySelector(`.gp-kpi[data-kpi="${key}"]`);
      const v = box.querySelector(".gp-kpi-value");
      if (v.textContent !== text && v.textContent !== "–") {
        box.classList.add("gp-changed");
        setTimeout(() => box.classList.remove("gp-changed"), 900);
      }
      v.textContent = text;
      box.classList.toggle("gp-bad", !!bad);
    };
    set("cv", fmtNum(k.cv, 3), +k.cv > 0.1);
    set("max_mean", fmtNum(k.max_mean, 2), +k.max_mean > 1.2);
    set("min_mean", fmtNum(k.min_mean, 2), +k.min_mean < 0.8);
    set("over_capacity", fmtInt(k.over_capacity), +k.over_capacity > 0);
    set("non_contiguous", fmtInt(k.non_contiguous), +k.non_contiguous > 0);
    set("township_coverage", fmtShare(k.township_coverage), +k.township_coverage < 1);
    set("village_coverage", fmtShare(k.village_coverage), +k.village_coverage < 1);
  }

  function renderHistory() {
    const h = S.history || {};
    byId("gp-undo").disabled = !h.can_undo || S.busy;
    byId("gp-redo").disabled = !h.can_redo || S.busy;
    byId("gp-dirty").hidden = !S.dirty;
  }

  function renderStore() {
    const s = S.store || {};
    byId("gp-version").textContent = s.version !== null && s.version !== undefined ? `版本 ${s.version}` : "未保存的方案";
  }

  // ------------------------------------------------------------------ messages & warnings
  function showMessage(text, detail, isError) {
    const box = byId("gp-message");
    clear(box);
    box.appendChild(el("span", { className: "gp-msg-text" }, text));
    if (detail) box.appendChild(el("span", { className: "gp-msg-detail" }, detail));
    box.classList.toggle("gp-error", !!isError);
    box.setAttribute("role", isError ? "alert" : "status");
    box.hidden = false;
  }
  function showError(err) {
    let detail = "";
    if (err && err.detail) detail = typeof err.detail === "string" ? err.detail : JSON.stringify(err.detail);
    showMessage((err && err.message) || String(err), detail, true);
  }

  function showWarnings(warnings) {
    S.lastWarnings = warnings || [];
    const box = byId("gp-warnings"), list = byId("gp-warn-list");
    clear(list);
    for (const w of warnings || []) {
      const f = S.grids.get(w.grid_id);
      const who = f ? `（${f.properties.manager_name || f.properties.manager_id}）` : "";
      const text = w.kind === "split"
        ? `网格 ${w.grid_id}${who}被分成 ${w.parts} 块，已在地图上用紫色标出`
        : (w.message || `${w.kind}: ${w.grid_id || ""}`);
      const li = el("li", null, text);
      if (w.grid_id) li.addEventListener("click", () => focusGrid(w.grid_id));
      list.appendChild(li);
    }
    box.hidden = !(warnings && warnings.length);
    highlightSplits((warnings || []).filter((w) => w.kind === "split"));
  }

  // ------------------------------------------------------------------ selection
  function setSelection(indices, mode) { // mode: "replace" | "add" | "remove" | "toggle"
    const sel = S.selected;
    if (mode === "replace") sel.fill(0);
    for (const i of indices) {
      if (mode === "remove") sel[i] = 0;
      else if (mode === "toggle") sel[i] = sel[i] ? 0 : 1;
      else sel[i] = 1;
    }
    let k = 0;
    for (let i = 0; i < sel.length; i++) k += sel[i];
    S.nSelected = k;
    renderSelection();
    points.redraw();
    if (k && byId("gp-auto-assign").checked && S.target && mode !== "remove") assignSelection();
  }

  function selectedIds() {
    const out = [];
    for (let i = 0; i < S.n; i++) if (S.selected[i]) out.push(S.tx.transformer_id[i]);
    return out;
  }

  function renderSelection() {
    const n = S.nSelected, tx = S.tx;
    const sum = byId("gp-sel-summary"), det = byId("gp-sel-detail");
    clear(det);
    byId("gp-sel-clear").hidden = !n;
    byId("gp-assign").disabled = !n || !S.target || S.busy;
    byId("gp-lock").disabled = !n || S.busy;
    byId("gp-unlock").disabled = !n || S.busy;
    if (!n) { sum.textContent = "未选中台区（点击、套索、框选或画刷）"; return; }
    let cust = 0, wl = 0;
    const perGrid = new Map();
    let one = -1;
    for (let i = 0; i < S.n; i++) {
      if (!S.selected[i]) continue;
      one = i;
      cust += +tx.customers[i] || 0; wl += +tx.workload[i] || 0;
      perGrid.set(tx.grid_id[i], (perGrid.get(tx.grid_id[i]) || 0) + 1);
    }
    sum.textContent = `已选 ${n} 个台区 · 户数 ${fmtInt(cust)} · 工作量 ${fmtInt(wl)}`;
    sum.dataset.n = n; sum.dataset.customers = cust; sum.dataset.workload = wl;
    if (n === 1) {
      const g = S.grids.get(tx.grid_id[one]);
      det.appendChild(el("div", null, tx.name[one] || tx.transformer_id[one], "（", tx.transformer_id[one], "）"));
      det.appendChild(el("div", null, `户数 ${fmtInt(tx.customers[one])} · 网格 ${tx.grid_id[one]} · 台区经理 `,
                         g ? (g.properties.manager_name || tx.manager_id[one]) : tx.manager_id[one]));
    } else {
      const list = [...perGrid.entries()].sort((a, b) => b[1] - a[1]).slice(0, 6);
      for (const [gid, k] of list) {
        const g = S.grids.get(gid);
        det.appendChild(el("div", null, `${gid}（`, g ? (g.properties.manager_name || "") : "", `）：${k} 个`));
      }
      if (perGrid.size > list.length) det.appendChild(el("div", null, `…共 ${perGrid.size} 个网格`));
    }
  }

  // ------------------------------------------------------------------ manager picker
  let pickerItems = [], pickerActive = -1;

  function buildPicker() {
    const input = byId("gp-picker-input");
    if (S.target && !S.managerById.has(S.target)) S.target = null;
    if (S.target) showTarget(); else { input.value = ""; input.classList.remove("gp-chosen"); }
  }

  function matchManagers(q) {
    q = (q || "").trim().toLowerCase();
    const qd = q.replace(/[-\s]/g, "");
    const st = byId("gp-filter-station").value;
    const out = [];
    for (const m of S.managers) {
      if (m.role === "hv") continue;
      const name = String(m.name || "").toLowerCase(), id = String(m.manager_id).toLowerCase();
      const phone = String(m.phone || "").toLowerCase();
      if (!q || name.includes(q) || id.includes(q) || phone.includes(q) || (qd && phone.replace(/[-\s]/g, "").includes(qd))) {
        out.push(m);
      }
    }
    // managers of the filtered station first, then by id
    out.sort((a, b) => ((st && a.station_id === st ? 0 : 1) - (st && b.station_id === st ? 0 : 1))
                       || (a.manager_id < b.manager_id ? -1 : 1));
    return out.slice(0, 60);
  }

  function renderPickerList() {
    const list = byId("gp-picker-list"), input = byId("gp-picker-input");
    clear(list);
    pickerItems = matchManagers(input.classList.contains("gp-chosen") ? "" : input.value);
    pickerItems.forEach((m, k) => {
      const st = S.stations.find((s) => s.station_id === m.station_id);
      const li = el("li", { role: "option", "aria-selected": k === pickerActive ? "true" : "false", dataset: { managerId: m.manager_id } },
        el("span", { className: "gp-swatch", style: { background: m.grid_id ? colourOf(m.manager_id) : "#fff", border: "1px solid #999" } }),
        el("span", { className: "gp-pk-name" }, m.name || m.manager_id),
        el("span", { className: "gp-pk-meta" }, m.manager_id, " · ", m.phone || "无电话", " · ",
           st ? (st.name || st.station_id) : (m.station_id || ""), m.grid_id ? "" : " · 无网格"));
      li.addEventListener("mousedown", (ev) => { ev.preventDefault(); chooseTarget(m.manager_id); });
      list.appendChild(li);
    });
    if (!pickerItems.length) list.appendChild(el("li", { className: "gp-muted" }, "没有匹配的台区经理"));
    list.hidden = false;
    input.setAttribute("aria-expanded", "true");
  }

  function closePicker() {
    byId("gp-picker-list").hidden = true;
    byId("gp-picker-input").setAttribute("aria-expanded", "false");
    pickerActive = -1;
  }

  function showTarget() {
    const m = S.managerById.get(S.target), input = byId("gp-picker-input");
    input.value = m ? `${m.name || m.manager_id}（${m.manager_id}）` : "";
    input.classList.toggle("gp-chosen", !!m);
  }

  function chooseTarget(managerId) {
    S.target = managerId;
    showTarget();
    closePicker();
    renderSelection();
  }

  function wirePicker() {
    const input = byId("gp-picker-input");
    input.addEventListener("focus", () => { input.select(); renderPickerList(); });
    input.addEventListener("input", () => { input.classList.remove("gp-chosen"); S.target = null; pickerActive = 0; renderPickerList(); renderSelection(); });
    input.addEventListener("blur", () => { closePicker(); if (S.target) showTarget(); });
    input.addEventListener("keydown", (ev) => {
      if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
        ev.preventDefault();
        const k = pickerItems.length;
        if (!k) return;
        pickerActive = (pickerActive + (ev.key === "ArrowDown" ? 1 : k - 1)) % k;
        renderPickerList();
        const li = byId("gp-picker-list").children[pickerActive];
        if (li) li.scrollIntoView({ block: "nearest" });
      } else if (ev.key === "Enter") {
        ev.preventDefault();
        const m = pickerItems[Math.max(0, pickerActive)];
        if (m) chooseTarget(m.manager_id);
        input.blur();
      } else if (ev.key === "Escape") {
        closePicker(); input.blur();
      }
    });
  }

  // ------------------------------------------------------------------ applying server answers
  /** Apply a DELTA (docs/editor.md) or a full state; returns when the map has been repainted. */
  async function applyDelta(d) {
    if (d && d.transformers && Array.isArray(d.transformers.transformer_id)) {
      loadState(d);
      await nextFrame();
      return;
    }
    const tx = S.tx;
    const t00 = now();
    const moved = new Set();
    if (d.transformers) {
      for (const [id, v] of Object.entries(d.transformers)) {
        const i = S.idx.get(id);
        if (i === undefined) continue;
        if (v.grid_id !== undefined) { tx.grid_id[i] = v.grid_id; moved.add(v.grid_id); }
        if (v.manager_id !== undefined) tx.manager_id[i] = v.manager_id;
      }
    }
    for (const gid of d.removed || []) removeGrid(gid);
    const feats = (d.grids && d.grids.features) || (Array.isArray(d.grids) ? d.grids : []);
    const fresh = feats.filter((f) => !S.colourOf.has(f.properties.manager_id));
    if (fresh.length) { // colour new managers against the grids around them only
      const boxes = fresh.map((f) => bboxOf(f.geometry));
      const near = [...S.grids.values()].filter((g) => {
        const b = bboxOf(g.geometry);
        return boxes.some((q) => b[0] <= q[2] + 1e-4 && q[0] <= b[2] + 1e-4 && b[1] <= q[3] + 1e-4 && q[1] <= b[3] + 1e-4);
      });
      assignColours([...near, ...fresh]);
    }
    for (const f of feats) { S.grids.set(f.properties.grid_id, f); drawGrid(f); }
    for (const m of d.managers || []) {
      const old = S.managerById.get(m.manager_id);
      if (old) Object.assign(old, m); else { S.managers.push(m); S.managerById.set(m.manager_id, m); }
    }
    if (d.kpi) S.kpi = d.kpi;
    if (d.history) S.history = d.history;
    if (d.dirty !== undefined) S.dirty = !!d.dirty;
    if (d.store) S.store = d.store;
    const bd = { apply: now() - t00 }; let t = now();
    const lap = (k) => { const u = now(); bd[k] = u - t; t = u; };
    lap("grids");
    updateLabelVisibility(); lap("labels");
    renderPanel(); lap("panel");
    renderKpi();
    renderHistory();
    renderStore();
    renderSelection(); lap("kpi");
    points.redraw(); lap("points");
    showWarnings(d.warnings || []); lap("warnings");
    await nextFrame(); lap("frame");
    window.gridplanEditor.breakdown = bd;
  }

  /** Run one API call that changes the state; measure request and page times. */
  async function edit(op, path, body, describe) {
    if (S.busy) return null;
    S.busy = true;
    const t0 = now();
    // the request goes out first; the busy state is drawn while the server works
    const answer = api(path, { method: "POST", body });
    setBusy(true);
    try {
      const d = await answer;
      const t1 = now();
      await applyDelta(d);
      const t2 = now();
      const rec = { op, n: body && body.transformer_ids ? body.transformer_ids.length : 0,
                    server_ms: t1 - t0, page_ms: t2 - t1, total_ms: t2 - t0, t0, t1 };
      window.gridplanEditor.perf.push(rec);
      if (describe) showMessage(describe(d), "");
      return d;
    } catch (err) {
      showError(err);
      return null;
    } finally {
      setBusy(false);
    }
  }

  function setBusy(b) {
    S.busy = b;
    byId("gp-busy").hidden = !b;
    document.body.dataset.busy = b ? "1" : "";
    renderHistory();
    renderSelection();
  }

  // ------------------------------------------------------------------ operations
  async function assignSelection() {
    const ids = selectedIds();
    if (!ids.length || !S.target) return;
    const m = S.managerById.get(S.target);
    const name = m ? m.name || m.manager_id : S.target;
    const d = await edit("reassign", "/api/reassign", { transformer_ids: ids, manager_id: S.target },
                         () => `已把 ${ids.length} 个台区划给 ${name}`);
    if (d) {
      setSelection([], "replace");
      showRow(gridOfManager(S.target));
    }
  }

  function gridOfManager(managerId) {
    for (const [gid, f] of S.grids) if (f.properties.manager_id === managerId) return gid;
    return null;
  }

  /** Mark a grid's panel row and scroll it into view (no map move). */
  function showRow(gid) {
    if (!gid) return;
    S.activeGrid = gid;
    for (const [g, tr] of rows) tr.classList.toggle("gp-row-active", g === gid);
    const tr = rows.get(gid);
    if (tr && !tr.hidden) tr.scrollIntoView({ block: "nearest" });
  }

  function selectedGrids() {
    const g = new Set();
    for (let i = 0; i < S.n; i++) if (S.selected[i]) g.add(S.tx.grid_id[i]);
    return [...g].filter((x) => x).sort();
  }

  async function lockGrids(gids, locked) {
    if (!gids.length) return;
    await edit("lock", "/api/lock", { grid_ids: gids, locked },
               () => `${locked ? "已锁定" : "已解锁"} ${gids.length} 个网格：${gids.slice(0, 5).join("、")}${gids.length > 5 ? "…" : ""}`);
  }

  async function undo() {
    if (!S.history.can_undo) return;
    await edit("undo", "/api/undo", {}, () => "已撤销一步");
  }
  async function redo() {
    if (!S.history.can_redo) return;
    await edit("redo", "/api/redo", {}, () => "已重做一步");
  }

  // ---- rebalance preview / compare review
  function perManagerTotals() {
    const t = new Map();
    for (const f of S.grids.values()) {
      const p = f.properties;
      const a = t.get(p.manager_id) || { workload: 0, customers: 0, n: 0 };
      a.workload += +p.workload || 0; a.customers += +p.customers || 0; a.n += +p.n_transformers || 0;
      t.set(p.manager_id, a);
    }
    return t;
  }

  function markIds(ids) {
    if (!ids || !ids.length) { S.marked = null; points.redraw(); return; }
    S.marked = new Uint8Array(S.n);
    for (const id of ids) { const i = S.idx.get(id); if (i !== undefined) S.marked[i] = 1; }
    points.redraw();
  }

  function openReview(review) {
    S.review = review;
    byId("gp-review").hidden = false;
    byId("gp-review-title").textContent = review.title;
    const sum = byId("gp-review-summary");
    clear(sum);
    for (const line of review.summary) sum.appendChild(el("div", null, line));
    const tbody = byId("gp-review-table").querySelector("tbody");
    clear(tbody);
    const arrow = (a, b, d) => {
      const cls = b > a ? "gp-up" : b < a ? "gp-down" : "";
      return el("td", { className: "gp-num" }, fmtNum(a, d), " → ", el("span", { className: cls }, fmtNum(b, d)));
    };
    for (const m of review.managers) {
      tbody.appendChild(el("tr", { dataset: { managerId: m.manager_id } },
        el("td", null, m.name || m.manager_id, el("span", { className: "gp-gid" }, m.manager_id)),
        arrow(+m.before.workload, +m.after.workload, 0), arrow(+m.before.customers, +m.after.customers, 0),
        arrow(+m.before.n, +m.after.n, 0)));
    }
    byId("gp-review-accept").hidden = review.kind !== "rebalance";
    byId("gp-review-discard").textContent = review.kind === "rebalance" ? "放弃" : "关闭";
    markIds(review.changed);
    previewLayer.clearLayers();
    if (review.grids) {
      L.geoJSON(review.grids, { interactive: false, renderer: map._gpRenderer,
        style: { color: "#d500f9", weight: 2, dashArray: "5 4", fill: false } }).addTo(previewLayer);
    }
    markChangedRows();
  }

  function closeReview() {
    S.review = null;
    byId("gp-review").hidden = true;
    previewLayer.clearLayers();
    markIds(null);
    markChangedRows();
  }

  function scopeOfFilters() {
    const tw = byId("gp-filter-township").value, st = byId("gp-filter-station").value;
    if (tw) return { body: { township_id: tw }, label: "乡镇 " + ((S.townshipById.get(tw) || {}).name || tw) };
    if (st) return { body: { station_id: st }, label: "供电所 " + ((S.stations.find((s) => s.station_id === st) || {}).name || st) };
    return null;
  }

  async function rebalance() {
    if (S.busy) return;
    const scope = scopeOfFilters();
    if (!scope) { showMessage("请先在右侧“网格”里选择一个供电所或乡镇，再自动平衡", "", true); return; }
    if (S.review && S.review.kind === "rebalance") await discardPreview();
    setBusy(true);
    showMessage(`正在自动平衡 ${scope.label} 中未锁定的网格…`, "");
    let p;
    const t0 = now();
    try {
      p = await api("/api/rebalance", { method: "POST", body: scope.body });
    } catch (err) { showError(err); setBusy(false); return; }
    setBusy(false);
    window.gridplanEditor.perf.push({ op: "rebalance", n: (p.changes || []).length, server_ms: now() - t0, page_ms: 0, total_ms: now() - t0 });
    const before = perManagerTotals();
    const after = new Map([...before].map(([k, v]) => [k, { ...v }]));
    const tx = S.tx;
    for (const c of p.changes || []) {
      const i = S.idx.get(c.transformer_id);
      if (i === undefined) continue;
      const w = +tx.workload[i] || 0, cu = +tx.customers[i] || 0;
      const a = after.get(c.from_manager) || { workload: 0, customers: 0, n: 0 };
      a.workload -= w; a.customers -= cu; a.n -= 1; after.set(c.from_manager, a);
      const b = after.get(c.to_manager) || { workload: 0, customers: 0, n: 0 };
      b.workload += w; b.customers += cu; b.n += 1; after.set(c.to_manager, b);
      if (!before.has(c.to_manager)) before.set(c.to_manager, { workload: 0, customers: 0, n: 0 });
    }
    const managers = [...after.keys()].filter((k) => {
      const a = before.get(k) || {}, b = after.get(k);
      return a.n !== b.n || a.customers !== b.customers || a.workload !== b.workload;
    }).sort().map((k) => ({ manager_id: k, name: (S.managerById.get(k) || {}).name, before: before.get(k), after: after.get(k) }));
    const kb = p.kpi_before || S.kpi, ka = p.kpi_after || {};
    const changes = p.changes || [];
    openReview({
      kind: "rebalance", preview_id: p.preview_id, title: `自动平衡预览：${scope.label}`,
      summary: [changes.length ? `${changes.length} 个台区将换台区经理（紫色圈出），锁定的网格不变。` : "无需调整：当前网格已平衡。",
                `离散系数 CV ${fmtNum(kb.cv, 3)} → ${fmtNum(ka.cv, 3)}；最大/平均 ${fmtNum(kb.max_mean, 2)} → ${fmtNum(ka.max_mean, 2)}；超载网格 ${fmtInt(kb.over_capacity)} → ${fmtInt(ka.over_capacity)}`],
      managers, changed: changes.map((c) => c.transformer_id), grids: p.grids,
    });
    showMessage("预览已生成：接受后才会生效，可撤销", "");
  }

  async function acceptPreview() {
    const r = S.review;
    if (!r || r.kind !== "rebalance") return;
    const n = (r.changed || []).length;
    const d = await edit("rebalance/accept", "/api/rebalance/accept", { preview_id: r.preview_id },
                         () => `已接受自动平衡：${n} 个台区换了台区经理`);
    if (d) closeReview();
  }

  async function discardPreview() {
    const r = S.review;
    if (r && r.kind === "rebalance") {
      try { await api("/api/rebalance/discard", { method: "POST", body: { preview_id: r.preview_id } }); }
      catch (err) { if (err.status !== 404) showError(err); }
      showMessage("已放弃自动平衡预览", "");
    }
    closeReview();
  }

  // ---- versions
  function dialog(title, body, buttons) {
    const dlg = byId("gp-dialog");
    byId("gp-dialog-title").textContent = title;
    const b = byId("gp-dialog-body"), a = byId("gp-dialog-actions");
    clear(b); clear(a);
    if (body) b.appendChild(body);
    return new Promise((resolve) => {
      let chosen = null;
      for (const [label, value, primary] of buttons) {
        const btn = el("button", { type: "button", className: primary ? "gp-primary" : "", dataset: { value } }, label);
        btn.addEventListener("click", () => { chosen = value; dlg.close(); });
        a.appendChild(btn);
      }
      // resolves however the dialog closes (a button, Esc, or a button inside the body)
      dlg.addEventListener("close", () => resolve(chosen), { once: true });
      dlg.showModal();
    });
  }

  async function save() {
    if (S.busy) return;
    const note = el("textarea", { id: "gp-save-note", maxlength: "500", placeholder: "例如：把西朱寨村划给张三" });
    const body = el("div", null, el("label", { for: "gp-save-note" }, "版本说明"), note,
                    el("div", { className: "gp-muted" }, "保存到 ", (S.store && S.store.path) || "方案库"));
    setTimeout(() => note.focus(), 0);
    const ok = await dialog("保存为新版本", body, [["取消", "", false], ["保存", "save", true]]);
    if (ok !== "save") return;
    setBusy(true);
    try {
      const r = await api("/api/save", { method: "POST", body: { note: note.value, base_version: S.store ? S.store.version ?? null : null } });
      if (r.store) S.store = r.store; else S.store = { ...S.store, version: r.version, base_version: r.version };
      S.dirty = false;
      renderStore(); renderHistory();
      showMessage(`已保存为版本 ${r.version}`, (S.store && S.store.path) || "");
    } catch (err) { showError(err); } finally { setBusy(false); }
  }

  async function versions() {
    if (S.busy) return;
    let r;
    try { r = await api("/api/versions"); } catch (err) { showError(err); return; }
    const list = r.versions || [];
    const tbody = el("tbody");
    const table = el("table", { className: "gp-versions" },
      el("thead", null, el("tr", null, el("th", null, "版本"), el("th", null, "时间"), el("th", null, "说明"),
                           el("th", { className: "gp-num" }, "变动台区"), el("th", null, ""))), tbody);
    let pick = null;
    for (const v of list.slice().reverse()) {
      const open = el("button", { type: "button" }, "打开");
      const cmp = el("button", { type: "button" }, "对比");
      open.addEventListener("click", () => { pick = ["open", v.version]; byId("gp-dialog").close(); });
      cmp.addEventListener("click", () => { pick = ["compare", v.version]; byId("gp-dialog").close(); });
      tbody.appendChild(el("tr", { dataset: { version: v.version } }, el("td", null, String(v.version)),
        el("td", null, String(v.timestamp || "").replace("T", " ").slice(0, 19)), el("td", null, v.note || ""),
        el("td", { className: "gp-num" }, v.moved_transformers === undefined || v.moved_transformers === null ? "" : fmtInt(v.moved_transformers)),
        el("td", null, open, " ", cmp)));
    }
    const body = list.length ? table : el("div", { className: "gp-muted" }, "方案库中还没有版本：先“保存”。");
    await dialog(`已保存的版本（${list.length}）`, body, [["关闭", "", false]]);
    if (!pick) return;
    if (pick[0] === "open") await openVersion(pick[1]); else await compareVersion(pick[1]);
  }

  async function openVersion(v) {
    if (S.dirty) {
      const ok = await dialog("打开版本", el("div", null, `打开版本 ${v} 会替换当前状态（可以撤销）。继续？`),
                              [["取消", "", false], ["打开", "open", true]]);
      if (ok !== "open") return;
    }
    closeReview();
    await edit("open", "/api/open", { version: v }, () => `已打开版本 ${v}`);
  }

  async function compareVersion(v) {
    let r;
    try { r = await api(`/api/compare?version=${encodeURIComponent(v)}`); } catch (err) { showError(err); return; }
    const changed = r.changed || [];
    const managers = (r.managers || []).map((m) => ({ ...m, name: m.name || (S.managerById.get(m.manager_id) || {}).name }));
    openReview({ kind: "compare", title: `与版本 ${v} 对比`, managers, changed,
                 summary: [changed.length ? `${changed.length} 个台区的台区经理与版本 ${v} 不同（紫色圈出）。` : `与版本 ${v} 相同。`,
                           "表中“前”为该版本，“后”为当前状态。"] });
  }

  // ---- export
  async function exportWhat(what) {
    const body = { what };
    if (what === "wallmap") {
      const st = byId("gp-filter-station").value || (S.townshipById.get(byId("gp-filter-township").value) || {}).station_id;
      if (!st) { showMessage("导出墙图：请先在右侧选择一个供电所", "", true); return; }
      body.station_id = st;
    }
    setBusy(true);
    showMessage(`正在导出${EXPORT_LABEL[what]}…`, "");
    try {
      const r = await api("/api/export", { method: "POST", body });
      showMessage(`已导出${EXPORT_LABEL[what]}`, r.path || r.name || "");
      if (r.name) {
        const res = await api(`/api/download/${encodeURIComponent(r.name)}`);
        if (res instanceof Response) {
          const blob = await res.blob();
          const url = URL.createObjectURL(blob);
          const a = el("a", { href: url, download: r.name });
          document.body.appendChild(a); a.click(); a.remove();
          setTimeout(() => URL.revokeObjectURL(url), 10000);
        }
      }
    } catch (err) { showError(err); } finally { setBusy(false); }
  }

  // ------------------------------------------------------------------ tools
  let brush = null; // {active, mode, cursor}

  function setTool(tool) {
    if (lasso && lasso.enabled()) lasso.disable();
    if (rectDraw && rectDraw.enabled()) rectDraw.disable();
    S.tool = tool;
    for (const b of document.querySelectorAll(".gp-tool")) {
      b.classList.toggle("gp-active", b.dataset.tool === tool);
      b.setAttribute("aria-checked", b.dataset.tool === tool ? "true" : "false");
    }
    const c = map.getContainer();
    c.classList.toggle("gp-mode-brush", tool === "brush");
    c.classList.toggle("gp-mode-rect", tool === "rect");
    if (tool === "pan") map.dragging.enable(); else map.dragging.disable();
    if (tool === "lasso") lasso.enable();
    if (tool === "rect") rectDraw.enable();
    if (brush && brush.cursor) brush.cursor.hidden = tool !== "brush";
  }

  function modeOf(ev) {
    if (ev && ev.altKey) return "remove";
    return ev && (ev.shiftKey || ev.ctrlKey || ev.metaKey) ? "add" : "replace";
  }

  function wireTools() {
    for (const b of document.querySelectorAll(".gp-tool")) b.addEventListener("click", () => setTool(b.dataset.tool));

    // click / hover
    map.on("click", (e) => {
      if (S.tool !== "pan") return;
      const p = e.containerPoint;
      const i = points.nearest(p.x, p.y, points.radius() + 4);
      const mode = modeOf(e.originalEvent);
      if (i >= 0) setSelection([i], mode === "add" ? "toggle" : mode);
      else {
        if (mode === "replace") setSelection([], "replace");
        const gid = gridAt(e.latlng);
        if (gid) showRow(gid);
      }
    });
    let hoverTip = null, lastMove = 0;
    map.on("mousemove", (e) => {
      const t = now();
      if (t - lastMove < 30) return;
      lastMove = t;
      const i = (S.tool === "pan" || S.tool === "rect") ? points.nearest(e.containerPoint.x, e.containerPoint.y, points.radius() + 3) : -1;
      if (i === points.hover) return;
      points.hover = i;
      points.redraw();
      if (hoverTip) { map.removeLayer(hoverTip); hoverTip = null; }
      if (i >= 0) {
        const tx = S.tx, g = S.grids.get(tx.grid_id[i]);
        const node = el("div", { className: "gp-tip" },
          el("b", null, tx.name[i] || tx.transformer_id[i]), el("br"),
          `${tx.transformer_id[i]} · 户数 ${fmtInt(tx.customers[i])}`, el("br"),
          `网格 ${tx.grid_id[i]} · `, g ? (g.properties.manager_name || "") : (tx.manager_id[i] || ""));
        hoverTip = L.tooltip({ direction: "top", offset: [0, -6] }).setLatLng([tx.lat[i], tx.lon[i]]).setContent(node);
        map.openTooltip(hoverTip);
      }
    });
    map.on("mouseout", () => { if (hoverTip) { map.removeLayer(hoverTip); hoverTip = null; } });

    // lasso (leaflet-lasso): we only use the drawn polygon and select on our own canvas
    lasso = L.lasso(map, { polygon: { color: "#d50000", weight: 2 } });
    let lassoMode = "replace";
    map.getContainer().addEventListener("mousedown", (ev) => { lassoMode = modeOf(ev); }, true);
    map.on("lasso.finished", (e) => {
      const poly = e.latLngs.map((ll) => { const p = map.latLngToContainerPoint(ll); return [p.x, p.y]; });
      if (poly.length >= 3) setSelection(points.inPolygon(poly), lassoMode);
      if (S.tool === "lasso") setTimeout(() => { if (S.tool === "lasso" && !lasso.enabled()) lasso.enable(); }, 0);
    });
    map.on("lasso.disabled", () => {
      // leaflet-lasso disables itself on a non-left click; keep the tool on while it is chosen
      if (S.tool === "lasso") setTimeout(() => { if (S.tool === "lasso" && !lasso.enabled()) lasso.enable(); }, 0);
    });

    // rectangle (leaflet-draw's rectangle handler, Chinese tooltips)
    if (L.drawLocal) {
      L.drawLocal.draw.handlers.rectangle.tooltip.start = "按住鼠标拖出矩形，框选台区";
      L.drawLocal.draw.handlers.simpleshape.tooltip.end = "松开鼠标完成框选";
      if (L.drawLocal.draw.handlers.rectangle) L.drawLocal.draw.handlers.rectangle.tooltip.start = "按住鼠标拖出矩形，框选台区";
    }
    rectDraw = new L.Draw.Rectangle(map, { shapeOptions: { color: "#d50000", weight: 2, fillOpacity: 0.08 }, showArea: false, repeatMode: true });
    let rectMode = "replace";
    map.getContainer().addEventListener("mousedown", (ev) => { if (S.tool === "rect") rectMode = modeOf(ev); }, true);
    map.on(L.Draw.Event.CREATED, (e) => {
      if (e.layerType !== "rectangle") return;
      const b = e.layer.getBounds();
      const p0 = map.latLngToContainerPoint(b.getNorthWest()), p1 = map.latLngToContainerPoint(b.getSouthEast());
      setSelection(points.inRect(p0.x, p0.y, p1.x, p1.y), rectMode);
    });

    // brush: paint over 台区 while the left button is held
    const container = map.getContainer();
    const cursor = el("div", { className: "gp-brush-cursor", hidden: true });
    container.appendChild(cursor);
    brush = { active: false, mode: "add", cursor, hits: new Set() };
    const radius = () => +byId("gp-brush-radius").value;
    const pos = (ev) => { const r = container.getBoundingClientRect(); return [ev.clientX - r.left, ev.clientY - r.top]; };
    const paint = (ev) => {
      const [x, y] = pos(ev);
      for (const i of points.inCircle(x, y, radius())) brush.hits.add(i);
      // show progress without waiting for mouse-up
      const sel = S.selected;
      for (const i of brush.hits) sel[i] = brush.mode === "remove" ? 0 : 1;
      points.redraw();
    };
    container.addEventListener("mousedown", (ev) => {
      if (S.tool !== "brush" || ev.button !== 0 || ev.target.closest(".leaflet-control-container")) return;
      ev.preventDefault(); ev.stopPropagation();
      brush.active = true;
      brush.mode = modeOf(ev);
      if (brush.mode === "replace") { S.selected.fill(0); brush.mode = "add"; }
      brush.hits = new Set();
      paint(ev);
    }, true);
    container.addEventListener("mousemove", (ev) => {
      if (S.tool !== "brush") return;
      const [x, y] = pos(ev), r = radius();
      Object.assign(cursor.style, { left: x - r + "px", top: y - r + "px", width: 2 * r + "px", height: 2 * r + "px" });
      cursor.hidden = false;
      if (brush.active) paint(ev);
    });
    container.addEventListener("mouseleave", () => { cursor.hidden = true; });
    document.addEventListener("mouseup", () => {
      if (!brush.active) return;
      brush.active = false;
      setSelection([...brush.hits], brush.mode);
    });
  }

  /** The grid under a point: bounding boxes first, then ray casting. */
  function gridAt(ll) {
    const x = ll.lng, y = ll.lat;
    const ring = (r) => {
      let inside = false;
      for (let p = 0, q = r.length - 1; p < r.length; q = p++) {
        const [xp, yp] = r[p], [xq, yq] = r[q];
        if ((yp > y) !== (yq > y) && x < ((xq - xp) * (y - yp)) / (yq - yp) + xp) inside = !inside;
      }
      return inside;
    };
    const poly = (rings) => ring(rings[0]) && !rings.slice(1).some(ring);
    for (const [gid, f] of S.grids) {
      const g = f.geometry;
      if (!g) continue;
      const b = bboxOf(g);
      if (x < b[0] || x > b[2] || y < b[1] || y > b[3]) continue;
      const polys = g.type === "MultiPolygon" ? g.coordinates : [g.coordinates];
      if (polys.some(poly)) return gid;
    }
    return null;
  }

  function wireUi() {
    byId("gp-assign").addEventListener("click", assignSelection);
    byId("gp-sel-clear").addEventListener("click", () => setSelection([], "replace"));
    byId("gp-lock").addEventListener("click", () => lockGrids(selectedGrids(), true));
    byId("gp-unlock").addEventListener("click", () => lockGrids(selectedGrids(), false));
    byId("gp-undo").addEventListener("click", undo);
    byId("gp-redo").addEventListener("click", redo);
    byId("gp-rebalance").addEventListener("click", rebalance);
    byId("gp-review-accept").addEventListener("click", acceptPreview);
    byId("gp-review-discard").addEventListener("click", discardPreview);
    byId("gp-save").addEventListener("click", save);
    byId("gp-versions").addEventListener("click", versions);
    byId("gp-warn-clear").addEventListener("click", () => showWarnings([]));
    byId("gp-export").addEventListener("change", (ev) => {
      const what = ev.target.value;
      ev.target.value = "";
      if (what) exportWhat(what);
    });
    byId("gp-filter-station").addEventListener("change", () => { fillTownships(""); renderPanel(); fitFiltered(); });
    byId("gp-filter-township").addEventListener("change", () => { renderPanel(); fitFiltered(); });
    document.addEventListener("keydown", (ev) => {
      const t = ev.target;
      if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable)) return;
      const k = ev.key.toLowerCase();
      if ((ev.ctrlKey || ev.metaKey) && k === "z" && !ev.shiftKey) { ev.preventDefault(); undo(); }
      else if ((ev.ctrlKey || ev.metaKey) && (k === "y" || (k === "z" && ev.shiftKey))) { ev.preventDefault(); redo(); }
      else if (k === "escape") { setSelection([], "replace"); }
    });
    window.addEventListener("beforeunload", (ev) => { if (S.dirty) { ev.preventDefault(); ev.returnValue = ""; } });
  }

  function fitFiltered() {
    let b = null;
    for (const f of S.grids.values()) {
      if (!gridVisible(f.properties)) continue;
      const lyr = gridLayers.get(f.properties.grid_id);
      if (!lyr) continue;
      b = b ? b.extend(lyr.getBounds()) : L.latLngBounds(lyr.getBounds().getSouthWest(), lyr.getBounds().getNorthEast());
    }
    if (b && b.isValid()) map.fitBounds(b, { padding: [20, 20], animate: false });
  }

  // ------------------------------------------------------------------ start
  async function start() {
    const t0 = now();
    map = L.map("gp-map", { preferCanvas: true, zoomControl: true, attributionControl: false, boxZoom: false,
                             zoomSnap: 0.25, wheelPxPerZoomLevel: 90 });
    map._gpRenderer = L.canvas({ padding: 0.3, tolerance: 0 });
    map.createPane("gpPoints").style.zIndex = 450;
    outlineLayer = L.layerGroup().addTo(map);
    gridLayer = L.geoJSON(null, { interactive: false, renderer: map._gpRenderer,
                                  style: (f) => gridStyle(f.properties),
                                  onEachFeature: (f, layer) => gridLayers.set(f.properties.grid_id, layer) }).addTo(map);
    highlightLayer = L.layerGroup().addTo(map);
    previewLayer = L.layerGroup().addTo(map);
    labelPane = map.createPane("gpLabels");
    labelPane.style.zIndex = 460;
    labelPane.style.pointerEvents = "none";
    map.on("zoomstart", () => { labelPane.style.visibility = "hidden"; });
    stationLayer = L.layerGroup().addTo(map);
    points = new PointsLayer().addTo(map);
    L.control.scale({ imperial: false, position: "bottomleft" }).addTo(map);
    map.on("zoomend viewreset", updateLabelVisibility);
    map.setView([35, 105], 5);
    window.gridplanEditor = { ready: false, perf: [], map, state: S, points,
                              select: (ids) => setSelection(ids.map((id) => S.idx.get(id)).filter((i) => i !== undefined), "replace"),
                              chooseTarget, highlights: () => highlightLayer.getLayers().length, screenOf: (id) => { const i = S.idx.get(id); return i === undefined ? null : [points.sx[i], points.sy[i]]; } };
    wirePicker();
    wireUi();
    let st;
    try {
      const early = window.__gridplanEarlyState;  // started by boot.js while the scripts loaded
      st = early ? await early : null;
      if (!st) st = await api("/api/state");
    } catch (err) {
      document.getElementById("gp-app").classList.remove("gp-loading");
      showError(err);
      return;
    }
    const t1 = now();
    S.tx = st.transformers;
    loadState(st);
    wireTools();
    let b = null;
    for (const lyr of gridLayers.values()) b = b ? b.extend(lyr.getBounds()) : L.latLngBounds(lyr.getBounds().getSouthWest(), lyr.getBounds().getNorthEast());
    if (b && b.isValid()) map.fitBounds(b, { padding: [10, 10], animate: false });
    else if (S.n) map.setView([S.tx.lat[0], S.tx.lon[0]], 12);
    updateLabelVisibility();
    document.getElementById("gp-app").classList.remove("gp-loading");
    await nextFrame();
    const t2 = now();
    window.gridplanEditor.timing = { state_ms: t1 - t0, render_ms: t2 - t1, ready_ms: t2 };
    window.gridplanEditor.ready = true;
    document.body.dataset.ready = "1";
  }

  document.addEventListener("DOMContentLoaded", start);
})();
