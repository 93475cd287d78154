"""The editor's ASGI app (Starlette): a thin, validating layer over :class:`EditSession`.

Security (it is a server, even if a local one): the CLI binds 127.0.0.1 by default; every request
must carry the session token (``X-Gridplan-Token`` on the API; ``?token=`` or the cookie that sets
for the page and its assets); the ``Host`` header must name this server (DNS rebinding) and an
``Origin`` header, when sent, must be this server's own (cross-site requests); bodies are limited;
every field is validated; errors are JSON with a Chinese message, never a traceback. See
docs/editor.md for the contract.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..errors import GridplanError, InfeasibleError, InputError
from ..render.assets import vendor_dir
from . import views
from .ops import EditRefused
from .session import EditSession, Phases

__all__ = ["MAX_BODY", "STATIC_DIR", "create_app"]

log = logging.getLogger(__name__)

MAX_BODY = 1_000_000  # bytes
STATIC_DIR = Path(__file__).resolve().parent / "static"
COOKIE = "gridplan_token"
MAX_IDS = 20_000
CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
       "script-src 'self'; connect-src 'self'; font-src 'self' data:; object-src 'none'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


class _Json(JSONResponse):
    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")


def _error(status: int, message: str, *, detail: str = "", code: str = "error", **extra: Any) -> _Json:
    return _Json({"error": message, "detail": detail, "code": code, **extra}, status_code=status)


# --------------------------------------------------------------------------- the guard (pure ASGI)

class Guard:
    """Host, Origin, token and body-size checks in front of the app; security headers on answers."""

    def __init__(self, app, *, token: str, hosts: set[str], origins: set[str], max_body: int = MAX_BODY):
        self.app = app
        self.token = token.encode()
        self.hosts = {h.lower() for h in hosts}
        self.origins = {o.lower() for o in origins}
        self.max_body = max_body

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # no websockets
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self._check(scope, headers)
        if refusal is not None:
            await self._send(refusal, scope, receive, send)
            return
        body, too_big = await self._body(receive, headers)
        if too_big:
            await self._send(_error(413, f"请求内容过大(上限 {self.max_body // 1000} KB)", code="too_large",
                                    detail=f"request body over {self.max_body} bytes"), scope, receive, send)
            return
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, self._secure(send, scope["path"]))

    def _check(self, scope, headers: dict[str, str]) -> Response | None:
        host = headers.get("host", "").lower()
        if host not in self.hosts:
            return _error(400, "主机名不被允许(请使用启动时打印的地址)", code="bad_host",
                          detail=f"Host header {host!r} is not this server")
        origin = headers.get("origin")
        if origin is not None and origin.lower() not in self.origins:
            return _error(403, "拒绝来自其他网页的请求", code="bad_origin",
                          detail=f"Origin {origin!r} is not this server")
        if headers.get("sec-fetch-site") == "cross-site":
            return _error(403, "拒绝来自其他网页的请求", code="bad_origin", detail="cross-site request")
        path = scope["path"]
        if path.startswith("/api/") or path == "/api":
            given = headers.get("x-gridplan-token")
        else:
            q = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            given = (q.get("token") or [None])[0] or _cookie(headers.get("cookie", ""), COOKIE)
        if not given:
            return _error(401, "缺少会话令牌(请使用启动时打印的完整地址)", code="no_token",
                          detail="missing session token (X-Gridplan-Token header on /api/)")
        if not hmac.compare_digest(given.encode(), self.token):
            return _error(403, "会话令牌无效(服务可能已重启,请使用新打印的地址)", code="bad_token",
                          detail="wrong session token")
        return None

    async def _body(self, receive, headers: dict[str, str]) -> tuple[bytes, bool]:
        length = headers.get("content-length")
        if length is not None:
            try:
                if int(length) > self.max_body:
                    return b"", True
            except ValueError:
                return b"", True
        chunks: list[bytes] = []
        size = 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                break
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return b"", True
            chunks.append(chunk)
            if not msg.get("more_body", False):
                break
        return b"".join(chunks), False

    def _secure(self, send, path: str):
        async def wrapped(message) -> None:
            if message["type"] == "http.response.start":
                h = list(message.get("headers", []))
                names = {k.lower() for k, _ in h}
                extra = {b"x-content-type-options": b"nosniff", b"referrer-policy": b"no-referrer",
                         b"x-frame-options": b"DENY", b"cross-origin-resource-policy": b"same-origin",
                         b"content-security-policy": CSP.encode()}
                if not path.startswith("/static/"):
                    extra[b"cache-control"] = b"no-store"
                h += [(k, v) for k, v in extra.items() if k not in names]
                message = {**message, "headers": h}
            await send(message)
        return wrapped

    async def _send(self, response: Response, scope, receive, send) -> None:
        await response(scope, receive, self._secure(send, scope["path"]))


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        k, _, v = part.strip().partition("=")
        if k == name:
            return v
    return None


# --------------------------------------------------------------------------- validation

class BadRequest(GridplanError):  # noqa: N818 - the HTTP name
    """A request that does not follow the contract (answered 400/415)."""

    def __init__(self, message: str, detail: str, status: int = 400):
        super().__init__(detail)
        self.message, self.detail, self.status = message, detail, status


def _ids(name: str, *, limit: int = MAX_IDS) -> Callable[[Any], list[str]]:
    def check(v: Any) -> list[str]:
        if not isinstance(v, list) or not v:
            raise BadRequest(f"{name} 须为非空的编号列表", f"{name} must be a non-empty list of strings")
        if len(v) > limit:
            raise BadRequest(f"{name} 最多 {limit} 个", f"{name} has more than {limit} items")
        if not all(isinstance(x, str) and 0 < len(x) <= 200 for x in v):
            raise BadRequest(f"{name} 中的每一项须为编号字符串", f"every item of {name} must be a string id")
        return v
    return check


def _text(name: str, *, limit: int = 200, empty: bool = False) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        if not isinstance(v, str) or (not empty and not v) or len(v) > limit:
            raise BadRequest(f"{name} 须为{'' if empty else '非空'}字符串(最长 {limit} 字)",
                             f"{name} must be a {'' if empty else 'non-empty '}string of at most {limit} characters")
        return v
    return check


def _bool(name: str) -> Callable[[Any], bool]:
    def check(v: Any) -> bool:
        if not isinstance(v, bool):
            raise BadRequest(f"{name} 须为 true 或 false", f"{name} must be a boolean")
        return v
    return check


def _int(name: str, *, null: bool = False) -> Callable[[Any], int | None]:
    def check(v: Any) -> int | None:
        if v is None and null:
            return None
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise BadRequest(f"{name} 须为非负整数", f"{name} must be a non-negative integer")
        return v
    return check


def _number(name: str) -> Callable[[Any], float]:
    def check(v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0 or v > 1e6:
            raise BadRequest(f"{name} 须为非负数", f"{name} must be a non-negative number")
        return float(v)
    return check


async def _json(request: Request, fields: dict[str, tuple[Callable[[Any], Any], bool]]) -> dict[str, Any]:
    """The request's JSON object, each field checked; unknown fields and bad JSON are refused."""
    body = await request.body()
    if not body.strip():
        data: Any = {}
    else:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise BadRequest("请求须为 JSON(Content-Type: application/json)",
                             f"unsupported content type {ctype!r}", 415)
        try:
            data = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise BadRequest("请求内容不是有效的 JSON", f"invalid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise BadRequest("请求内容须为 JSON 对象", "the body must be a JSON object")
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise BadRequest(f"未知字段:{'、'.join(unknown)}", f"unknown fields: {', '.join(unknown)}")
    out = {}
    for name, (check, required) in fields.items():
        if name not in data:
            if required:
                raise BadRequest(f"缺少字段 {name}", f"missing field {name}")
            continue
        out[name] = check(data[name])
    return out


# --------------------------------------------------------------------------- the app

def create_app(session: EditSession, *, token: str, port: int, host: str = "127.0.0.1",
               max_body: int = MAX_BODY, static_dir: Path | None = None,
               extra_hosts: tuple[str, ...] = ()) -> Any:
    """The ASGI app serving ``session`` (wrapped in :class:`Guard`).

    Parameters
    ----------
    session
        The editing session.
    token
        The session token every request must carry.
    port, host
        Where the server listens: ``Host`` must be ``127.0.0.1:port``, ``localhost:port``,
        ``[::1]:port`` or ``host:port`` (plus ``extra_hosts``, e.g. ``"testserver"`` in tests).
    max_body
        Largest accepted request body, in bytes.
    static_dir
        The page's folder (default: ``gridplan/edit/static``).
    """
    static = Path(static_dir) if static_dir else STATIC_DIR
    # One worker thread does all the session's work: edits are serialised, and what is cached
    # per thread (pyproj transformers, whose first use in a new thread is slow) stays warm.
    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gridplan-edit")

    async def run(fn: Callable[[], Any]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(worker, fn)

    async def page(request: Request) -> Response:
        index = static / "index.html"
        if not index.is_file():
            return _error(404, "编辑页面文件缺失(gridplan/edit/static/index.html),请重新安装 gridplan",
                          code="no_page", detail=f"{index} not found")
        resp = FileResponse(index, media_type="text/html; charset=utf-8")
        given = request.query_params.get("token")
        if given:
            resp.set_cookie(COOKIE, given, httponly=True, samesite="strict", path="/")
        return resp

    async def get_state(request: Request) -> Response:
        return _Json(await run(lambda: views.state(session)))

    async def stepped(request: Request, fields: dict[str, tuple[Callable[[Any], Any], bool]],
                      step: Callable[[dict[str, Any]], tuple[Any, Any]]) -> Response:
        """An edit's answer (the delta), each phase timed into a ``Server-Timing`` header.

        The last entry, ``handler``, is the whole handler: its wall time and the CPU time of the
        whole process meanwhile (every thread).
        """
        phases = Phases()
        t0, c0 = time.perf_counter(), time.process_time()
        with phases.phase("parse"):
            b = await _json(request, fields)
        queued = time.perf_counter()

        def work() -> dict[str, Any]:
            phases.items.append(("queue", time.perf_counter() - queued, 0.0))
            session.phases = phases
            try:
                before, after = step(b)
                with phases.phase("delta"):
                    return views.delta(session, before, after)
            finally:
                session.phases = None

        answer = await run(work)
        with phases.phase("json"):
            resp = _Json(answer)
        phases.items.append(("handler", time.perf_counter() - t0, time.process_time() - c0))
        resp.headers["Server-Timing"] = phases.header()
        log.debug("%s %s: %s", request.method, request.url.path, resp.headers["Server-Timing"])
        return resp

    async def reassign(request: Request) -> Response:
        return await stepped(request, {"transformer_ids": (_ids("transformer_ids"), True),
                                       "manager_id": (_text("manager_id"), True)},
                             lambda b: session.reassign(b["transformer_ids"], b["manager_id"]))

    async def lock_(request: Request) -> Response:
        return await stepped(request, {"grid_ids": (_ids("grid_ids", limit=5000), True),
                                       "locked": (_bool("locked"), False)},
                             lambda b: session.lock(b["grid_ids"], b.get("locked", True)))

    async def undo(request: Request) -> Response:
        return await stepped(request, {}, lambda b: session.undo())

    async def redo(request: Request) -> Response:
        return await stepped(request, {}, lambda b: session.redo())

    async def rebalance(request: Request) -> Response:
        b = await _json(request, {"township_id": (_text("township_id"), False),
                                  "station_id": (_text("station_id"), False),
                                  "stability": (_number("stability"), False)})
        if ("township_id" in b) == ("station_id" in b):
            raise BadRequest("请指定 township_id 或 station_id 之一", "give exactly one of township_id, station_id")

        def work() -> dict[str, Any]:
            pid, result = session.rebalance(township_id=b.get("township_id"), station_id=b.get("station_id"),
                                            stability=b.get("stability", 1.0))
            return views.preview(session, pid, result)
        return _Json(await run(work))

    async def accept(request: Request) -> Response:
        return await stepped(request, {"preview_id": (_text("preview_id", limit=100), True)},
                             lambda b: session.accept(b["preview_id"]))

    async def discard(request: Request) -> Response:
        b = await _json(request, {"preview_id": (_text("preview_id", limit=100), True)})
        await run(lambda: session.discard(b["preview_id"]))
        return _Json({"discarded": True})

    async def save(request: Request) -> Response:
        b = await _json(request, {"note": (_text("note", limit=500, empty=True), False),
                                  "base_version": (_int("base_version", null=True), False)})

        def work() -> dict[str, Any]:
            v = session.save(b.get("note", ""), b.get("base_version", session.base_version))
            return {"version": v, "store": session.store_info(), "dirty": session.dirty,
                    "history": session.history.summary()}
        return _Json(await run(work))

    async def versions(request: Request) -> Response:
        return _Json(await run(lambda: {"versions": session.versions(), "store": session.store_info()}))

    async def open_(request: Request) -> Response:
        b = await _json(request, {"version": (_int("version"), True)})

        def work() -> dict[str, Any]:
            session.open_version(b["version"])
            return views.state(session)
        return _Json(await run(work))

    async def compare(request: Request) -> Response:
        raw = request.query_params.get("version", "")
        if not raw.isdigit() or len(raw) > 9:
            raise BadRequest("version 须为版本号(正整数)", "query parameter version must be a positive integer")
        return _Json(await run(lambda: session.compare(int(raw))))

    async def export(request: Request) -> Response:
        b = await _json(request, {"what": (_text("what", limit=20), True),
                                  "station_id": (_text("station_id"), False),
                                  "size": (_text("size", limit=4), False)})

        def work() -> dict[str, Any]:
            out = session.export(b["what"], station_id=b.get("station_id"), size=b.get("size", "A1"))
            return {"path": str(out), "name": out.name, "download": out.is_file()}
        return _Json(await run(work))

    async def download(request: Request) -> Response:
        name = request.path_params["name"]
        assert session.export_dir is not None  # set in EditSession.__post_init__
        folder = Path(session.export_dir)
        target = folder / name
        if "/" in name or "\\" in name or name.startswith(".") or not target.is_file():
            return _error(404, "导出文件不存在", code="unknown_file", detail=f"no exported file {name!r}")
        return FileResponse(target, filename=name)

    async def recovery(request: Request) -> Response:
        b = await _json(request, {"action": (_text("action", limit=20), True)})
        if b["action"] not in ("recover", "discard"):
            raise BadRequest("action 须为 recover 或 discard", "action must be recover or discard")

        def work() -> dict[str, Any]:
            if b["action"] == "recover":
                session.recover()
            else:
                session.discard_recovery()
            return views.state(session)
        return _Json(await run(work))

    routes = [
        Route("/", page, methods=["GET"]),
        Route("/api/state", get_state, methods=["GET"]),
        Route("/api/reassign", reassign, methods=["POST"]),
        Route("/api/lock", lock_, methods=["POST"]),
        Route("/api/undo", undo, methods=["POST"]),
        Route("/api/redo", redo, methods=["POST"]),
        Route("/api/rebalance", rebalance, methods=["POST"]),
        Route("/api/rebalance/accept", accept, methods=["POST"]),
        Route("/api/rebalance/discard", discard, methods=["POST"]),
        Route("/api/save", save, methods=["POST"]),
        Route("/api/versions", versions, methods=["GET"]),
        Route("/api/open", open_, methods=["POST"]),
        Route("/api/compare", compare, methods=["GET"]),
        Route("/api/export", export, methods=["POST"]),
        Route("/api/download/{name}", download, methods=["GET"]),
        Route("/api/recovery", recovery, methods=["POST"]),
        # the npm packages the page loads (Leaflet, leaflet-draw, leaflet-lasso), served locally
        Mount("/static/vendor", app=StaticFiles(directory=vendor_dir(), check_dir=False), name="vendor"),
        Mount("/static", app=StaticFiles(directory=static, check_dir=False), name="static"),
    ]

    async def refused(request: Request, exc: EditRefused) -> Response:
        return _error(exc.status, exc.message, detail=exc.detail, code=exc.code, items=exc.items[:200])

    async def bad(request: Request, exc: BadRequest) -> Response:
        return _error(exc.status, exc.message, detail=exc.detail, code="bad_request")

    async def input_error(request: Request, exc: InputError) -> Response:
        return _error(400, "输入有误:" + "; ".join(p.what for p in exc.problems[:5]), detail=exc.format(),
                      code="input")

    async def infeasible(request: Request, exc: InfeasibleError) -> Response:
        return _error(409, f"无法满足:{exc}", detail=str(exc), code="infeasible")

    async def other(request: Request, exc: GridplanError) -> Response:
        return _error(409, f"操作失败:{exc}", detail=str(exc), code="refused")

    async def http(request: Request, exc: HTTPException) -> Response:
        text = {404: "没有这个地址", 405: "不支持该请求方法"}.get(exc.status_code, "请求无效")
        return _error(exc.status_code, text, detail=str(exc.detail), code=f"http_{exc.status_code}")

    async def crash(request: Request, exc: Exception) -> Response:
        log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
        return _error(500, "服务器内部错误(详情见服务端日志)", code="internal", detail="internal error")

    # Starlette types a handler's exception as Exception; ours take the class they are registered for
    handlers: dict[Any, Callable[..., Awaitable[Response]]] = {
        EditRefused: refused, BadRequest: bad, InputError: input_error, InfeasibleError: infeasible,
        GridplanError: other, HTTPException: http, Exception: crash}
    app = Starlette(routes=routes, exception_handlers=handlers)
    hosts = {f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", f"{host}:{port}", *extra_hosts}
    origins = {f"http://{h}" for h in hosts}
    return Guard(app, token=token, hosts=hosts, origins=origins, max_body=max_body)
