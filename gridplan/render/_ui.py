"""The map's own interactive parts, in one script: labels, search, popups, legend, tool fixes.

Everything here runs in the page after folium's layers are created (the element is added to the
map after them). Texts passed in are already HTML-escaped in Python (:func:`.popups.esc`): the
script puts them in ``innerHTML`` of labels, popups and the result list, never anything raw.

- **Labels**: manager names (and, from station zoom in, phones) on the grids; township names
  always; village names from ``VILLAGE_ZOOM``. A label shows only when its grid is wide enough on
  screen at the current zoom (inscribed circle of the polygon, in metres, against metres/pixel).
- **台区** are hidden below ``TR_MIN_ZOOM`` (county zoom) so circles never bury the grids.
- **Search** (one box): substring, not prefix, over grid id, manager name, id and phone, 台区
  name and id; picking a result zooms there and opens its popup.
- **Popups** are built when opened, listing only the fields that have a value (no empty rows).
- **Legend**: a collapsible control; it collapses when a popup opens, expanding it closes the
  popup, and popups keep clear of the collapsed legend (so it never covers one). Collapsed from
  the start on narrow (phone) screens, as is the layer control.
- **Measure**: leaflet-measure 2.1.7 styles its vertices through ``layer._path`` (SVG only); on a
  ``preferCanvas`` map that threw ``TypeError ... setAttribute``. While measuring the map's
  renderer is SVG.
- **Draw**: leaflet-draw's texts in Chinese (``L.drawLocal``).
"""

from __future__ import annotations

from typing import Any

from branca.element import MacroElement
from folium.template import Template

__all__ = ["DRAW_LOCAL_ZH", "NARROW_PX", "PHONE_ZOOM", "TR_MIN_ZOOM", "VILLAGE_ZOOM", "MapUI"]

#: Below this zoom (a whole county) the 台区 layer is not drawn.
TR_MIN_ZOOM = 12
#: From this zoom (a station's territory) grid labels also show the manager's phone.
PHONE_ZOOM = 13
#: From this zoom village names show.
VILLAGE_ZOOM = 13
#: Screens narrower than this (CSS pixels) start with the legend and layer control collapsed.
NARROW_PX = 600

#: leaflet-draw's user texts (L.drawLocal), in Simplified Chinese.
DRAW_LOCAL_ZH: dict[str, Any] = {
    "draw": {
        "toolbar": {
            "actions": {"title": "取消绘制", "text": "取消"},
            "finish": {"title": "完成绘制", "text": "完成"},
            "undo": {"title": "删除最后一个点", "text": "撤销"},
            "buttons": {"polyline": "画线", "polygon": "画固定范围（多边形）",
                        "rectangle": "画固定范围（矩形）", "circle": "画圆", "marker": "放置标记",
                        "circlemarker": "放置圆点"},
        },
        "handlers": {
            "circle": {"tooltip": {"start": "按住并拖动以画圆"}, "radius": "半径"},
            "circlemarker": {"tooltip": {"start": "点击地图放置圆点"}},
            "marker": {"tooltip": {"start": "点击地图放置标记"}},
            "polygon": {"tooltip": {"start": "点击开始画范围", "cont": "点击继续画",
                                    "end": "点击第一个点闭合范围"}},
            "polyline": {"error": "<strong>错误：</strong>边线不能交叉！",
                         "tooltip": {"start": "点击开始画线", "cont": "点击继续画线",
                                     "end": "点击最后一个点结束"}},
            "rectangle": {"tooltip": {"start": "按住并拖动以画矩形"}},
            "simpleshape": {"tooltip": {"end": "松开鼠标完成"}},
        },
    },
    "edit": {
        "toolbar": {
            "actions": {"save": {"title": "保存修改", "text": "保存"},
                        "cancel": {"title": "放弃修改", "text": "取消"},
                        "clearAll": {"title": "清除全部范围", "text": "全部清除"}},
            "buttons": {"edit": "修改范围", "editDisabled": "没有可修改的范围",
                        "remove": "删除范围", "removeDisabled": "没有可删除的范围"},
        },
        "handlers": {
            "edit": {"tooltip": {"text": "拖动节点修改范围", "subtext": "点击“取消”放弃修改"}},
            "remove": {"tooltip": {"text": "点击要删除的范围"}},
        },
    },
}

_CSS = """
<style>
.leaflet-container { background: #f4f2ec; }
.gp-lbl { background: none; border: none; }
.gp-lbl > div { position: absolute; transform: translate(-50%, -50%); white-space: nowrap;
  text-align: center; line-height: 1.15; pointer-events: none;
  font-family: 'Noto Sans CJK SC', 'Microsoft YaHei', 'PingFang SC', sans-serif;
  text-shadow: 0 0 2px #fff, 0 0 2px #fff, 0 0 3px #fff, 0 0 4px #fff; }
.gp-lbl-grid > div { font-size: 13px; font-weight: bold; color: #1a1a1a; }
.gp-lbl-grid .gp-ph { display: block; font-size: 12px; font-weight: normal; color: #003a70; }
.gp-lbl-town > div { font-size: 15px; font-weight: bold; color: #5a3d00; letter-spacing: 2px; }
.gp-lbl-vil > div { font-size: 11px; color: #555; }
.gp-ctl { background: #fff; border-radius: 4px; box-shadow: 0 1px 5px rgba(0,0,0,.4);
  font: 13px 'Noto Sans CJK SC', 'Microsoft YaHei', 'PingFang SC', sans-serif; }
.gp-search input { width: 210px; max-width: calc(100vw - 120px); padding: 6px 8px; border: 0;
  border-radius: 4px; font-size: 14px; box-sizing: border-box; }
.gp-search ul { list-style: none; margin: 0; padding: 0; max-height: 40vh; overflow-y: auto;
  border-top: 1px solid #ddd; }
.gp-search ul:empty { display: none; }
.gp-search li { padding: 5px 8px; cursor: pointer; border-bottom: 1px solid #eee;
  max-width: 260px; white-space: normal; }
.gp-search li:hover, .gp-search li.gp-on { background: #e8f0fb; }
.gp-search li small { color: #666; }
.gp-export { display: block; padding: 6px 8px; color: #000; text-decoration: none; }
#gp-legend { max-width: min(300px, calc(100vw - 130px)); max-height: calc(100vh - 170px);
  overflow-y: auto; padding: 6px 10px; font-size: 12px; line-height: 1.5; }
#gp-legend summary { font-weight: bold; font-size: 13px; cursor: pointer; }
#gp-legend details:not([open]) summary { font-size: 12px; max-width: 150px; overflow: hidden;
  white-space: nowrap; text-overflow: ellipsis; }
.gp-pop th { text-align: left; padding-right: 8px; color: #444; font-weight: normal;
  white-space: nowrap; vertical-align: top; }
.gp-pop td { font-weight: bold; }
.gp-pop caption { text-align: left; font-weight: bold; padding-bottom: 2px; }
.gp-pop td.note { color: #b00020; }
</style>
"""

_TEMPLATE = Template("""
{% macro header(this, kwargs) %}""" + _CSS + """{% endmacro %}
{% macro script(this, kwargs) %}
(function () {
  var map = {{ this._parent.get_name() }};
  var cfg = {{ this.config|tojson }};
  var grids = {{ this.grids_gj or 'null' }}, gridsFg = {{ this.grids_fg or 'null' }};
  var trs = {{ this.tr_gj or 'null' }}, trFg = {{ this.tr_fg or 'null' }};
  var townFg = {{ this.town_fg or 'null' }}, vilFg = {{ this.village_fg or 'null' }};
  var narrow = map.getContainer().clientWidth < cfg.narrow;

  // ---- popups: only the fields that have a value --------------------------------------
  function fmt(v) {
    if (typeof v === 'number') return v.toLocaleString('zh-CN', {maximumFractionDigits: 2});
    return String(v);
  }
  function table(p, fields) {
    var rows = [];
    fields.forEach(function (f) {
      var v = p[f[0]];
      if (v === null || v === undefined || v === '') return;
      rows.push('<tr><th>' + f[1] + '</th><td>' + fmt(v) + '</td></tr>');  // escaped in Python
    });
    return '<table class="gp-pop">' + rows.join('') + '</table>';
  }
  var POP = {maxWidth: 360, autoPanPaddingBottomLeft: [5, 50]};
  // one popup per layer group (not one per feature: 10,000 台区 stay fast to load)
  if (grids) grids.bindPopup(function (l) { return table(l.feature.properties, cfg.grid_fields); }, POP);
  if (trs) trs.bindPopup(function (l) { return table(l.feature.properties, cfg.tr_fields); }, POP);
  function openFor(l, latlng, fields) {
    L.popup(POP).setLatLng(latlng).setContent(table(l.feature.properties, fields)).openOn(map);
  }

  // ---- labels ---------------------------------------------------------------------------
  function label(lat, lon, cls, html) {
    return L.marker([lat, lon], {interactive: false, keyboard: false,
      icon: L.divIcon({className: 'gp-lbl ' + cls, html: '<div>' + html + '</div>', iconSize: null})});
  }
  var gridLabels = [];
  var gridAt = {};
  cfg.grid_labels.forEach(function (d) { gridAt[d[5]] = [d[0], d[1]]; });
  if (townFg) {
    var t = L.layerGroup().addTo(townFg);
    cfg.town_labels.forEach(function (d) { label(d[0], d[1], 'gp-lbl-town', d[2]).addTo(t); });
  }
  // grid and village labels are made the first time the zoom needs them (not at load)
  var gridGroup = null, vilGroup = null;
  function makeGridLabels() {
    if (gridGroup || !gridsFg) return;
    gridGroup = L.layerGroup();
    cfg.grid_labels.forEach(function (d) {
      var m = label(d[0], d[1], 'gp-lbl-grid', '<span class="gp-nm">' + d[3] + '</span>' +
                    (d[4] ? '<span class="gp-ph">' + d[4] + '</span>' : ''));
      m.addTo(gridGroup);
      gridLabels.push({m: m, lat: d[0], r: d[2]});
    });
    gridGroup.addTo(gridsFg);
  }
  function makeVillageLabels() {
    if (vilGroup || !vilFg) return;
    vilGroup = L.layerGroup();
    cfg.village_labels.forEach(function (d) { label(d[0], d[1], 'gp-lbl-vil', d[2]).addTo(vilGroup); });
    vilGroup.addTo(vilFg);
  }
  function relabel() {
    var z = map.getZoom();
    if (z >= cfg.name_zoom) makeGridLabels();
    if (vilFg) {
      if (z >= cfg.village_zoom) { makeVillageLabels(); if (!vilFg.hasLayer(vilGroup)) vilFg.addLayer(vilGroup); }
      else if (vilGroup && vilFg.hasLayer(vilGroup)) vilFg.removeLayer(vilGroup);
    }
    gridLabels.forEach(function (o) {
      // metres per CSS pixel at this latitude and zoom (Web Mercator)
      var mpp = 40075016.686 * Math.cos(o.lat * Math.PI / 180) / Math.pow(2, z + 8);
      var px = 2 * o.r / mpp;
      var el = o.m.getElement();
      if (!el) return;
      el.style.display = (z >= cfg.name_zoom && px >= 44) ? '' : 'none';
      var ph = el.querySelector('.gp-ph');
      if (ph) ph.style.display = (z >= cfg.phone_zoom && px >= 80) ? '' : 'none';
    });
    if (trs && trFg) {
      var want = z >= cfg.tr_min_zoom && map.hasLayer(trFg);
      if (want && !trFg.hasLayer(trs)) trFg.addLayer(trs);
      if (!want && trFg.hasLayer(trs)) trFg.removeLayer(trs);
    }
  }
  map.on('zoomend overlayadd', relabel);
  map.whenReady(relabel);

  // ---- search: one box, substring over managers, phones, grids and 台区 ----------------
  var ESC = {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#x27;',
             '`': '&#96;', '$': '&#36;', '\\\\': '&#92;'};
  function esc(s) { return String(s).replace(/[&<>"'`$\\\\]/g, function (c) { return ESC[c]; }); }
  var index = [];
  if (grids) grids.eachLayer(function (l) {
    var p = l.feature.properties;
    index.push({l: l, kind: 'grid', key: String(p.search || '').toLowerCase(),
                label: '网格 ' + p.grid_id + ' · ' + (p.manager || '') + (p.phone ? ' <small>' + p.phone + '</small>' : '')});
  });
  if (trs) trs.eachLayer(function (l) {
    var p = l.feature.properties;
    index.push({l: l, kind: 'tr', key: String(p.search || '').toLowerCase(),
                label: '台区 ' + p.name + ' <small>' + p.id + (p.manager ? ' · ' + p.manager : '') + '</small>'});
  });
  var Search = L.Control.extend({
    options: {position: 'topleft'},
    onAdd: function () {
      var box = L.DomUtil.create('div', 'leaflet-control gp-ctl gp-search');
      var input = L.DomUtil.create('input', '', box);
      input.type = 'search';
      input.placeholder = cfg.placeholder;
      input.setAttribute('aria-label', cfg.placeholder);
      var list = L.DomUtil.create('ul', '', box);
      L.DomEvent.disableClickPropagation(box);
      L.DomEvent.disableScrollPropagation(box);
      var hits = [];
      function render() {
        var q = esc(input.value.trim().toLowerCase());
        hits = [];
        if (q) for (var i = 0; i < index.length && hits.length < cfg.max_hits; i++)
          if (index[i].key.indexOf(q) >= 0) hits.push(index[i]);
        list.innerHTML = '';
        hits.forEach(function (h, k) {
          var li = L.DomUtil.create('li', k === 0 ? 'gp-on' : '', list);
          li.innerHTML = h.label;  // built from escaped properties
          // stop the click here: pick() empties the list, and a click from a detached element
          // would reach the map and close the popup it just opened
          L.DomEvent.on(li, 'click', function (e) { L.DomEvent.stop(e); pick(h); });
        });
        if (q && !hits.length) {
          var li = L.DomUtil.create('li', '', list); li.textContent = '没有找到'; li.style.cursor = 'default';
        }
      }
      function pick(h) {
        setTimeout(function () { list.innerHTML = ''; }, 0);
        input.blur();
        if (h.kind === 'grid') {
          map.fitBounds(h.l.getBounds(), {maxZoom: 15, animate: false});
          var at = gridAt[h.l.feature.properties.grid_id];
          openFor(h.l, at ? L.latLng(at[0], at[1]) : h.l.getBounds().getCenter(), cfg.grid_fields);
        } else {
          if (trFg && !map.hasLayer(trFg)) map.addLayer(trFg);
          map.setView(h.l.getLatLng(), Math.max(map.getZoom(), 16), {animate: false});
          relabel();
          openFor(h.l, h.l.getLatLng(), cfg.tr_fields);
        }
      }
      L.DomEvent.on(input, 'input', render);
      L.DomEvent.on(input, 'focus', function () {  // the result list must not run under the legend
        var d = document.querySelector('#gp-legend details'); if (d) d.open = false; });
      L.DomEvent.on(input, 'keydown', function (e) {
        if (e.key === 'Enter' && hits.length) { pick(hits[0]); L.DomEvent.preventDefault(e); }
        if (e.key === 'Escape') { input.value = ''; render(); }
      });
      return box;
    }
  });
  if (index.length) new Search().addTo(map);

  // ---- legend: collapsible, never over a popup -------------------------------------------
  var legend = document.getElementById('gp-legend');
  if (legend) {
    var Legend = L.Control.extend({
      options: {position: 'bottomleft'},
      onAdd: function () { L.DomEvent.disableClickPropagation(legend);
                           L.DomEvent.disableScrollPropagation(legend); return legend; }
    });
    new Legend().addTo(map);
    legend.style.display = '';
    var details = legend.querySelector('details');
    if (narrow) details.open = false;
    map.on('popupopen', function () { details.open = false; });
    details.addEventListener('toggle', function () { if (details.open) map.closePopup(); });
  }

  // ---- layer control: collapsed on phones -------------------------------------------------
  if (narrow) {
    var lc = document.querySelector('.leaflet-control-layers');
    if (lc) {
      lc.classList.remove('leaflet-control-layers-expanded');
      var toggle = lc.querySelector('.leaflet-control-layers-toggle');
      L.DomEvent.on(toggle, 'click', function (e) {
        L.DomEvent.preventDefault(e);
        lc.classList.toggle('leaflet-control-layers-expanded');
      });
      map.on('click', function () { lc.classList.remove('leaflet-control-layers-expanded'); });
    }
  }

  // ---- measure tool on a canvas map ---------------------------------------------------------
  var svg = null;
  map.on('measurestart', function () { map.options.renderer = svg = svg || L.svg({padding: 0.5}); });
  map.on('measurefinish', function () { setTimeout(function () { delete map.options.renderer; }, 0); });
})();
{% endmacro %}
""")


class MapUI(MacroElement):
    """Labels, search, popups, legend behaviour and tool fixes of the plan map (see module doc).

    Parameters
    ----------
    grids_gj, tr_gj, grids_fg, tr_fg, town_fg, village_fg
        The folium elements (or None) the script works on.
    config
        JSON-serialisable settings and data: label lists, popup field lists (escaped texts).
    """

    _template = _TEMPLATE

    def __init__(self, *, grids_gj: Any, tr_gj: Any, grids_fg: Any, tr_fg: Any, town_fg: Any,
                 village_fg: Any, config: dict[str, Any]) -> None:
        super().__init__()
        self._name = "GridplanUI"
        name = lambda el: el.get_name() if el is not None else None
        self.grids_gj, self.tr_gj = name(grids_gj), name(tr_gj)
        self.grids_fg, self.tr_fg = name(grids_fg), name(tr_fg)
        self.town_fg, self.village_fg = name(town_fg), name(village_fg)
        self.config = {"narrow": NARROW_PX, "tr_min_zoom": TR_MIN_ZOOM, "phone_zoom": PHONE_ZOOM,
                       "village_zoom": VILLAGE_ZOOM, "name_zoom": 11, "max_hits": 12,
                       "placeholder": "搜索台区经理、电话、网格或台区", **config}


class DrawLocal(MacroElement):
    """Sets leaflet-draw's texts to Chinese; must be added before the draw control."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        if (window.L && L.drawLocal) {
          (function merge(dst, src) {
            Object.keys(src).forEach(function (k) {
              if (src[k] && typeof src[k] === 'object') { dst[k] = dst[k] || {}; merge(dst[k], src[k]); }
              else dst[k] = src[k];
            });
          })(L.drawLocal, {{ this.local|tojson }});
        }
        {% endmacro %}
    """)

    def __init__(self) -> None:
        super().__init__()
        self._name = "DrawLocal"
        self.local = DRAW_LOCAL_ZH
