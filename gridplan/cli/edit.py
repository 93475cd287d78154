"""``gridplan edit``: redraw grids in the browser (a local web server; see docs/editor.md)."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import secrets
import socket
import sys
import threading
import webbrowser
from pathlib import Path
from typing import Any

import click

import gridplan

from ..edit import ops
from ..edit.server import create_app
from ..edit.session import EditSession
from ..errors import InputError, Problem
from ..pipeline import read_plan
from ..replan.store import load_snapshot
from . import options

log = logging.getLogger(__name__)

DEFAULT_PORT = 8765


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _has_layer(path: Path, name: str) -> bool:
    import pyogrio

    try:
        return name in {str(n) for n, _ in pyogrio.list_layers(path)}
    except Exception:  # noqa: BLE001 - not a GeoPackage: the caller reports it
        return False


def open_plan(ref: str, *, county_dir: Path | None) -> tuple[Any, Path, str]:
    """The plan named by ``ref``, the default store next to it, and its label.

    ``ref`` is a plan folder, a ``plan.gpkg``, ``STORE.gpkg#N`` / a store (its latest version;
    needs ``county_dir``, the county folder its plans were made from), or a county folder (planned
    first).
    """
    path_text, _, version = ref.partition("#") if "#" in ref else (ref, "", "")
    path = Path(path_text)
    if not path.exists():
        raise InputError([Problem(ref, "not found", "give a plan folder, plan.gpkg, STORE.gpkg#N or a county folder")])
    if path.is_dir() and (path / "plan.gpkg").exists() and not version:
        return read_plan(path), path / "plans.gpkg", str(path.resolve())
    if path.is_file() and _has_layer(path, "versions"):
        if county_dir is None:
            raise InputError([Problem(ref, "a plan-store version holds the assignment, not the county's layers",
                                      "also give --county DIR, the county folder its plans were made from")])
        county = gridplan.load_county(county_dir)
        snap = load_snapshot(ref)
        label = f"{path.resolve()}#{snap.meta.get('version')}"
        p = gridplan.plan(county, current=snap)
        grid_of = dict(zip(snap.assignments["transformer_id"].astype(str), snap.assignments["grid_id"].astype(str)))
        now = dict(zip(p.transformers["transformer_id"].astype(str), p.transformers["grid_id"].astype(str)))
        moves = {t: g for t, g in grid_of.items() if t in now and now[t] != g}
        managers = dict(zip(snap.grids["grid_id"].astype(str), snap.grids["manager_id"].astype(str)))
        p = ops.set_assignment(p, moves, managers)
        return p, path, label
    if path.is_file():
        if version:
            raise InputError([Problem(str(path), "is a plan, not a plan store: it has no versions",
                                      f"drop '#{version}'")])
        return read_plan(path), path.parent / "plans.gpkg", str(path.resolve())
    if any(path.glob("townships.*")):
        click.echo(f"正在规划 {path} … / planning the county first")
        county = gridplan.load_county(path)
        out = Path("maps") / path.resolve().name
        return gridplan.plan(county), out / "plans.gpkg", str(path.resolve())
    raise InputError([Problem(ref, "neither a plan nor a county folder",
                              "give a plan folder (with plan.gpkg), plan.gpkg, STORE.gpkg#N or a county folder")])


def _machine_names(host: str) -> list[str]:
    """Names and addresses other computers may reach this one by (for the Host check)."""
    names: list[str] = []
    if host not in ("0.0.0.0", "::"):
        names.append(host)
    for name in (socket.gethostname(), socket.getfqdn()):
        names.append(name)
        with contextlib.suppress(OSError):
            names += socket.gethostbyname_ex(name)[2]
    return [n for n in dict.fromkeys(names) if n and not _is_loopback(n)] or [host]


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say so; without it every
    # answer waited ~40 ms (Nagle holding the body until the client's delayed ACK of the headers)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        click.secho(f"错误 / Error: 无法监听 {host}:{port}({exc.strerror});端口被占用时换一个 --port,"
                    "或用 --port 0 自动选择 / cannot listen there; try another --port, or --port 0",
                    fg="red", err=True)
        sys.exit(options.EXIT_INPUT)
    sock.listen(64)
    return sock


@click.command("edit")
@click.argument("plan_ref", metavar="PLAN")
@click.option("--store", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Plan store that 保存 writes versions to (default: plans.gpkg next to the plan).")
@click.option("--county", "county_dir", type=click.Path(file_okay=False, exists=True, path_type=Path),
              default=None, help="County folder (needed when PLAN is a store version STORE.gpkg#N).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (another than loopback needs --allow-remote).")
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True,
              help="Port (0 picks a free one).")
@click.option("--allow-remote", is_flag=True, help="Allow a non-loopback --host (anyone with the URL can edit).")
@click.option("--no-browser", is_flag=True, help="Do not open the browser.")
@click.option("--recover", "recover", is_flag=True, help="Replay unsaved edits from the recovery file.")
@click.option("--discard-recovery", is_flag=True, help="Delete the recovery file without replaying it.")
@click.option("--export-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where exports are written (default: export/ next to the store).")
@options.verbosity
@options.quiet
@options.handle_errors
def edit(plan_ref: str, store: Path | None, county_dir: Path | None, host: str, port: int,
         allow_remote: bool, no_browser: bool, recover: bool, discard_recovery: bool,
         export_dir: Path | None, verbose: int, quiet: bool) -> None:
    """Edit PLAN in the browser: reassign 台区, lock, rebalance, undo, save versions, export.

    PLAN is a plan folder, a plan.gpkg, a store version STORE.gpkg#N (with --county), or a county
    folder (planned first). Prints the editor's address (with its session token); Ctrl-C stops.
    """
    import uvicorn


    options.setup_logging(verbose, quiet)
    if recover and discard_recovery:
        raise click.UsageError("--recover and --discard-recovery exclude each other")
    if not _is_loopback(host) and not allow_remote:
        click.secho(f"错误 / Error: --host {host} 不是本机地址;如确需让其他计算机访问,请加 --allow-remote"
                    " / a non-loopback --host needs --allow-remote", fg="red", err=True)
        sys.exit(options.EXIT_INPUT)
    p, default_store, label = open_plan(plan_ref, county_dir=county_dir)
    session = EditSession(p, store=store or default_store, label=label, export_dir=export_dir)
    if session.recovery:
        steps = len(session.recovery.get("ops", []))
        when = session.recovery.get("saved_at", "")
        if recover or (not discard_recovery and sys.stdin.isatty()
                       and click.confirm(f"发现未保存的编辑({steps} 步,{when}),是否恢复?", default=True)):
            n = session.recover()
            click.echo(f"已恢复 {n} 步未保存的编辑 / recovered {n} unsaved steps")
        elif discard_recovery:
            session.discard_recovery()
            click.echo("已删除恢复文件 / recovery file discarded")
        else:
            click.echo(f"发现未保存的编辑({steps} 步):可在页面中恢复,或用 --recover / --discard-recovery")
    sock = _bind(host, port)
    port = sock.getsockname()[1]
    token = secrets.token_urlsafe(32)
    names = [] if _is_loopback(host) else _machine_names(host)
    app = create_app(session, token=token, port=port, host=host,
                     extra_hosts=tuple(f"[{n}]:{port}" if ":" in n else f"{n}:{port}" for n in names))
    shown = names[0] if names else host
    shown = f"[{shown}]" if ":" in shown else shown
    url = f"http://{'127.0.0.1' if _is_loopback(host) else shown}:{port}/?token={token}"
    if not _is_loopback(host):
        click.secho(f"警告 / Warning: 正在监听 {host}:{port},网络中任何拿到此地址(含令牌)的人都能修改方案。"
                    " / listening on a non-loopback address: anyone with the URL can edit.", fg="yellow", err=True)
    click.echo(f"gridplan 编辑器 / editor: {url}")
    click.echo(f"方案库 / store: {session.store}    按 Ctrl-C 停止 / Ctrl-C stops")
    if not no_browser:
        threading.Timer(0.5, lambda: webbrowser.open(url)).start()
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                            server_header=False, date_header=False)
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it handled: a clean stop
        pass
    finally:
        sock.close()
    if session.dirty:
        click.echo(f"已停止;未保存的编辑保存在 {session.journal},下次启动时可恢复 / stopped; unsaved edits are "
                   "in the recovery file")
    else:
        click.echo("已停止 / stopped")


COMMANDS = [edit]
