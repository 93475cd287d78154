"""Basemaps, legend, pin-drawing tool and the other controls of the interactive map."""

from __future__ import annotations

import logging
from typing import Any

import folium
from branca.element import MacroElement
from folium.plugins import Draw
from folium.template import Template

from ..errors import Problems
from ..metrics.kpi import coverage_line
from ._layers import GRID_PALETTE, RADIUS_MAX, RADIUS_MIN, RADIUS_REF
from .popups import esc

log = logging.getLogger(__name__)

#: Accepted basemap names (aliases map to the first form).
BASEMAPS = {"osm": "osm", "openstreetmap": "osm", "amap": "amap", "gaode": "amap", "高德": "amap",
            "tianditu": "tianditu", "天地图": "tianditu", "none": "none", "": "none"}

BASEMAP_LABEL = {"osm": "OpenStreetMap", "amap": "高德地图（GCJ-02，数据已偏移对齐）",
                 "tianditu": "天地图", "none": "无底图（离线）"}

_TIANDITU = ("https://t{{s}}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
             "&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={{z}}"
             "&TILEROW={{y}}&TILECOL={{x}}&tk={key}")


def normalise_basemap(name: str | None) -> str:
    """Return the canonical basemap name, or raise :class:`~gridplan.InputError`."""
    key = (name or "none").strip().lower()
    if key not in BASEMAPS:
        p = Problems()
        p.add("basemap", f"unknown basemap {name!r}",
              "use osm (OpenStreetMap), amap/gaode (高德), tianditu (天地图) or none (no tiles, offline)")
        p.raise_if_any()
    return BASEMAPS[key]


class BaseLayer(folium.map.Layer):
    """A base layer of the layer control: tile layer(s), or none at all ("无底图").

    Only the layer shown at start is added to the map; the others request no tile until the user
    picks them in the layer control.
    """

    _template = Template("""
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = L.layerGroup([
            {%- for url, opts in this.tiles %}
                L.tileLayer({{ url|tojson }}, {{ opts|tojson }}),
            {%- endfor %}
            ]);
        {% endmacro %}
    """)

    def __init__(self, name: str, tiles: list[tuple[str, dict[str, Any]]], *, show: bool) -> None:
        super().__init__(name=name, overlay=False, control=True, show=show)
        self._name = "BaseLayer"
        self.tiles = tiles


def add_basemap(m: folium.Map, basemap: str, *, tianditu_key: str | None) -> None:
    """Offer the tiles of ``basemap`` in the layer control, not shown at start.

    The map opens on "无底图（离线）" and asks for no tile; picking the basemap in the layer control
    loads it. ``"none"`` adds no base layer at all.
    """
    if basemap == "none":
        return
    if basemap == "osm":
        tiles = [("https://tile.openstreetmap.org/{z}/{x}/{y}.png",
                  {"maxZoom": 19, "attribution": "&copy; OpenStreetMap contributors"})]
    elif basemap == "amap":
        url = ("https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8"
               "&x={x}&y={y}&z={z}")
        tiles = [(url, {"subdomains": "1234", "maxZoom": 18,
                        "attribution": "&copy; 高德地图 AutoNavi"})]
    else:  # tianditu
        if not tianditu_key:
            p = Problems()
            p.add("basemap", "the 天地图 (tianditu) basemap needs a key, and none is set",
                  'put tianditu_key = "..." under [map] in gridplan.toml (a free key from '
                  "console.tianditu.gov.cn), or use basemap osm, amap or none")
            p.raise_if_any()
        tiles = [(_TIANDITU.format(layer=layer, key=tianditu_key),
                  {"subdomains": "01234567", "maxZoom": 18, "attribution": "&copy; 天地图"})
                 for layer in ("vec", "cva")]
    BaseLayer("无底图（离线）", [], show=True).add_to(m)
    BaseLayer(BASEMAP_LABEL[basemap], tiles, show=False).add_to(m)


class PinDraw(Draw):
    """folium's Draw, in Chinese, polygons only; asks for ``manager_id`` and exports the pin file.

    Each drawn polygon gets ``properties.manager_id`` (asked for when drawn); the export button
    saves all of them as ``pins.geojson``: exactly the file ``gridplan plan --pins`` reads
    (with a top-level ``"coords": "gcj02"`` when drawn over a GCJ-02 basemap).
    """

    _template = Template("""
        {% macro script(this, kwargs) %}
            var drawnItems_{{ this.get_name() }} = new L.featureGroup().addTo({{ this._parent.get_name() }});
            var {{ this.get_name() }} = new L.Control.Draw({
                position: {{ this.position|tojson }},
                draw: {{ this.draw_options|tojson }},
                edit: {featureGroup: drawnItems_{{ this.get_name() }}, remove: true},
            }).addTo({{ this._parent.get_name() }});
            {{ this._parent.get_name() }}.on(L.Draw.Event.CREATED, function(e) {
                var id = window.prompt("此范围固定给哪位台区经理？请输入台区经理编号 manager_id：", "");
                e.layer.feature = {type: "Feature", properties: {manager_id: id || ""}};
                e.layer.bindTooltip(document.createTextNode("manager_id: " + (id || "（未填）")));
                drawnItems_{{ this.get_name() }}.addLayer(e.layer);
            });
            var export_{{ this.get_name() }} = L.Control.extend({
                options: {position: {{ this.position|tojson }}},
                onAdd: function () {
                    var box = L.DomUtil.create("div", "leaflet-control leaflet-bar gp-ctl");
                    var a = L.DomUtil.create("a", "gp-export", box);
                    a.id = "gp-export";
                    a.href = "#";
                    a.textContent = "导出固定范围";
                    a.title = "把画好的范围保存为 GeoJSON（gridplan plan --pins 读取）";
                    a.style.width = "auto";
                    L.DomEvent.disableClickPropagation(box);
                    L.DomEvent.on(a, "click", function () {
                        var data = drawnItems_{{ this.get_name() }}.toGeoJSON();
                        {% if this.coords %}data.coords = {{ this.coords|tojson }};{% endif %}
                        a.setAttribute("href", "data:application/geo+json;charset=utf-8,"
                            + encodeURIComponent(JSON.stringify(data)));
                        a.setAttribute("download", {{ this.filename|tojson }});
                    });
                    return box;
                }
            });
            new export_{{ this.get_name() }}().addTo({{ this._parent.get_name() }});
        {% endmacro %}
    """)

    def __init__(self, *, coords: str | None = None) -> None:
        # Over a GCJ-02 basemap (高德) the polygons are drawn in GCJ-02: the export says so, and
        # `gridplan plan --pins` converts them back.
        self.coords = coords
        super().__init__(export=True, filename="pins.geojson", position="bottomright",
                         draw_options={"polyline": False, "circle": False, "circlemarker": False,
                                       "marker": False, "rectangle": True,
                                       "polygon": {"allowIntersection": False, "showArea": True}})


_LEGEND = Template("""
{% macro html(this, kwargs) %}
<div id="gp-legend" class="leaflet-control gp-ctl" style="display:none">
<details open><summary>{{ this.title }}</summary>
<div>{% for c in this.palette %}<span style="display:inline-block;width:14px;height:10px;background:{{ c }};opacity:.7;margin-right:1px"></span>{% endfor %}
 服务网格（颜色只为区分相邻网格；图上标注台区经理姓名，放大后显示电话）</div>
<div><span style="display:inline-block;width:22px;border-top:2.5px dashed #333;vertical-align:middle"></span> 乡镇边界及乡镇名</div>
{% if this.villages %}<div><span style="display:inline-block;width:22px;border-top:1.5px dotted #6d6d6d;vertical-align:middle"></span> 村界（放大后显示村名）</div>{% endif %}
<div>{% for r, n in this.sizes %}<svg width="{{ 2*r+2 }}" height="{{ 2*r+2 }}" style="vertical-align:middle"><circle cx="{{ r+1 }}" cy="{{ r+1 }}" r="{{ r }}" fill="#999" stroke="#222"/></svg> {{ n }}户 {% endfor %}<br>台区（圆面积与户数成正比，颜色同所属网格；放大到 {{ this.tr_zoom }} 级及以上显示）</div>
{% if this.feeders %}<div><svg width="26" height="10" style="vertical-align:middle"><line x1="0" y1="5" x2="26" y2="5" stroke="#fff" stroke-width="6"/><line x1="0" y1="5" x2="26" y2="5" stroke="#1a1a1a" stroke-width="3"/></svg> 10kV线路分段（深色线，颜色区分分段；悬停显示负责人及电话，"高压到段"）</div>{% endif %}
{% if this.switches %}<div><svg width="14" height="14" style="vertical-align:middle"><circle cx="7" cy="7" r="5" fill="#fff" stroke="#d62728" stroke-width="2.5"/></svg> 常开开关（联络）
 <svg width="10" height="10" style="vertical-align:middle"><circle cx="5" cy="5" r="3" fill="#222"/></svg> 常闭开关</div>{% endif %}
<div><span style="display:inline-block;width:14px;height:14px;background:#c0392b;color:#fff;font-size:10px;text-align:center;line-height:14px">所</span> 供电所
 <span style="display:inline-block;width:14px;height:14px;background:#f28e2b;color:#fff;font-size:10px;text-align:center;line-height:14px;border-radius:50%">站</span> 供电服务站</div>
{% if this.coverage %}<div style="margin-top:4px"><b>覆盖：</b>{{ this.coverage }}</div>{% endif %}
{% for line in this.extra %}<div>{{ line }}</div>{% endfor %}
<div style="margin-top:4px;color:#444">点击网格或台区查看台区经理、电话和户数；左上角搜索框可按台区经理姓名、电话、网格编号、台区名称或编号查找（包含即可）。</div>
<div style="margin-top:4px;color:#444"><b>固定范围（pins）：</b>用左侧多边形工具画出范围，按提示输入台区经理编号（manager_id），再点“导出固定范围”保存为 pins.geojson；
 运行 <code>gridplan plan --pins pins.geojson</code> 时，范围内的台区固定分给该经理。</div>
<div style="margin-top:4px;color:#666">底图：{{ this.basemap }}{% if this.note %}<br>{{ this.note }}{% endif %}</div>
</details></div>
{% endmacro %}
""")


class Legend(MacroElement):
    """The map's legend and help text (Chinese); every value passed in must already be escaped."""

    _template = _LEGEND

    def __init__(self, *, title: str, basemap: str, feeders: bool, switches: bool,
                 note: str = "", coverage: str = "", villages: bool = False, tr_zoom: int = 12,
                 extra: list[str] | tuple[str, ...] = ()) -> None:
        super().__init__()
        self.coverage = coverage
        self._name = "Legend"
        self.title = title
        self.villages = villages
        self.tr_zoom = tr_zoom
        self.extra = list(extra)
        self.basemap = "无底图（离线）" if basemap == "none" else \
            f"无底图（离线）；右上角可选 {BASEMAP_LABEL.get(basemap, basemap)}"
        self.feeders = feeders
        self.switches = switches
        self.note = note
        self.palette = GRID_PALETTE[:6]
        self.sizes = [(RADIUS_MIN, 0), (round(RADIUS_MIN + (RADIUS_MAX - RADIUS_MIN) * 0.5, 1),
                                        int(RADIUS_REF / 4)), (RADIUS_MAX, int(RADIUS_REF))]


class MetricScale(MacroElement):
    """A metric-only scale bar at the bottom right (the legend sits at the bottom left)."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        L.control.scale({imperial: false, position: "bottomright"}).addTo({{ this._parent.get_name() }});
        {% endmacro %}
    """)


def add_search(m: folium.Map, layer: folium.GeoJson | None, *, geom_type: str,
               placeholder: str, **style: Any) -> None:
    """Add a leaflet-search box over ``layer`` (its ``search`` property; already escaped)."""
    if layer is None or not layer.data.get("features"):
        return
    from folium.plugins import Search

    Search(layer=layer, search_label="search", geom_type=geom_type, placeholder=placeholder,
           collapsed=True, position="topleft", **style).add_to(m)


def legend_title(county_name: Any, n_grids: int, n_tr: int) -> str:
    """The legend's heading: county name and counts (escaped)."""
    return f"{esc(county_name)} 供电服务网格：{n_grids} 个网格，{n_tr} 个台区"


def coverage_text(coverage: dict[str, Any] | None) -> str:
    """The legend's 乡乡有点、村村有人 line (escaped), empty for a plan without coverage figures."""
    if not coverage or "county" not in coverage:
        return ""
    return esc(coverage_line(coverage))
