"""``gridplan edit`` from the command line: what PLAN may be, refusals, a real server on loopback."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import gridplan
from gridplan.cli import main
from gridplan.cli.edit import open_plan

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "geodata" / "sample"
pytestmark = pytest.mark.skipif(not (SAMPLE / "transformers.csv").exists(), reason="geodata/sample not present")


@pytest.fixture(scope="module")
def plan_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("editcli")
    p = gridplan.plan(gridplan.load_county(SAMPLE))
    p.to_file(tmp / "plan", map_html=False, roster=False)
    from gridplan.replan.store import save_version

    save_version(p, tmp / "plans.gpkg", note="v1")
    return tmp


def _printed_url(proc: subprocess.Popen) -> tuple[str, int, str]:
    """The URL ``gridplan edit`` prints (waiting up to 240 s), its port and its token."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        m = re.search(r"(http://127\.0\.0\.1:(\d+)/\?token=(\S+))", line)
        if m:
            return m.group(1), int(m.group(2)), m.group(3)
    raise AssertionError(proc.stderr.read() if proc.poll() is not None else "no URL printed")


def test_plan_refs(plan_dir):
    p, store, label = open_plan(str(plan_dir / "plan"), county_dir=None)
    assert store == plan_dir / "plan" / "plans.gpkg" and len(p.grids)
    p2, store2, _ = open_plan(str(plan_dir / "plan" / "plan.gpkg"), county_dir=None)
    assert store2 == plan_dir / "plan" / "plans.gpkg"
    # a store version, with the county folder it was planned from: exactly that assignment
    p3, store3, label3 = open_plan(f"{plan_dir / 'plans.gpkg'}#1", county_dir=SAMPLE)
    assert store3 == plan_dir / "plans.gpkg" and label3.endswith("#1")
    a = p.transformers.set_index("transformer_id")["manager_id"]
    b = p3.transformers.set_index("transformer_id")["manager_id"]
    assert (a.loc[b.index] == b).all()


def test_command_line_refusals(plan_dir, tmp_path):
    r = CliRunner().invoke(main, ["edit", str(tmp_path / "missing"), "--no-browser"])
    assert r.exit_code == 2 and "not found" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(main, ["edit", f"{plan_dir / 'plans.gpkg'}#1", "--no-browser"])
    assert r.exit_code == 2 and "--county" in r.output
    r = CliRunner().invoke(main, ["edit", f"{plan_dir / 'plan' / 'plan.gpkg'}#1", "--no-browser"])
    assert r.exit_code == 2 and "no versions" in r.output
    r = CliRunner().invoke(main, ["edit", str(plan_dir / "plan"), "--host", "0.0.0.0", "--no-browser"])
    assert r.exit_code == 2 and "--allow-remote" in r.output
    r = CliRunner().invoke(main, ["edit", str(plan_dir / "plan"), "--recover", "--discard-recovery"])
    assert r.exit_code == 2
    r = CliRunner().invoke(main, ["edit", str(plan_dir / "plan"), "--port", "70000"])
    assert r.exit_code == 2


def test_server_starts_on_a_free_loopback_port_and_stops_on_ctrl_c(plan_dir):
    import http.client
    import json

    def get(port: int, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
        con = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            con.request("GET", path, headers=headers)
            res = con.getresponse()
            return res.status, res.read()
        finally:
            con.close()

    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-c", "from gridplan.cli import main; main()", "edit", str(plan_dir / "plan"), "--port", "0",
                             "--no-browser"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=plan_dir)
    try:
        url, port, token = _printed_url(proc)
        for _ in range(100):
            try:
                status, body = get(port, "/api/versions", {"X-Gridplan-Token": token})
                break
            except ConnectionError:
                time.sleep(0.1)
        assert status == 200 and json.loads(body)["versions"] == []
        assert get(port, "/api/versions", {})[0] == 401
        assert get(port, "/api/versions", {"X-Gridplan-Token": token, "Host": "attacker.example"})[0] == 400
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert "Traceback" not in err and "已停止" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_the_listening_socket_answers_without_a_nagle_delay():
    """Connections accepted on the editor's socket get TCP_NODELAY (an answer's body is not held
    back ~40 ms until the client's delayed ACK of its headers)."""
    import asyncio
    import socket

    from gridplan.cli.edit import _bind

    sock = _bind("127.0.0.1", 0)

    async def nodelay_of_accepted() -> int:
        got: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            got.set_result(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(accepted, sock=sock)
        try:
            _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
            value = await asyncio.wait_for(got, 10)
            writer.close()
            return value
        finally:
            server.close()
            await server.wait_closed()

    assert asyncio.run(nodelay_of_accepted()) != 0


def test_an_edit_survives_a_kill_right_after_its_answer(plan_dir, tmp_path):
    """The recovery file is in place before an edit is answered: SIGKILL then loses nothing."""
    import http.client
    import json

    from gridplan.edit.session import JOURNAL_NAME

    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    store = tmp_path / "plans.gpkg"
    proc = subprocess.Popen([sys.executable, "-c", "from gridplan.cli import main; main()", "edit",
                             str(plan_dir / "plan"), "--store", str(store), "--port", "0", "--no-browser"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        _, port, token = _printed_url(proc)
        con = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        h = {"X-Gridplan-Token": token}
        con.request("GET", "/api/state", headers=h)
        state = json.loads(con.getresponse().read())
        t = state["transformers"]
        grid_mgr = {f["id"]: f["properties"]["manager_id"] for f in state["grids"]["features"]}
        town = t["township_id"][0]
        rows = [i for i, tw in enumerate(t["township_id"]) if tw == town]
        other = next(g for g in sorted({t["grid_id"][i] for i in rows}) if g != t["grid_id"][rows[0]])
        tid = t["transformer_id"][rows[0]]
        con.request("POST", "/api/reassign", body=json.dumps({"transformer_ids": [tid], "manager_id": grid_mgr[other]}),
                    headers={**h, "Content-Type": "application/json"})
        r = con.getresponse()
        assert r.status == 200, r.read()
        r.read()
        proc.kill()  # no clean stop: the journal must already be there
        proc.communicate(timeout=60)
        journal = json.loads((tmp_path / JOURNAL_NAME).read_text(encoding="utf-8"))
        assert journal["ops"] == [{"op": "reassign", "transformer_ids": [tid], "manager_id": grid_mgr[other]}]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
