"""The counties the end-to-end benchmarks plan: the sample, and generated ones of given sizes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def bench_counties(tmp: Path, sizes: list[int]) -> list[tuple[str, Path]]:
    """``(label, folder)`` of ``geodata/sample`` and of one county generated per size (seed 1)."""
    folders = [("geodata/sample", ROOT / "geodata" / "sample")]
    for n in sizes:
        f = Path(tmp) / f"county_{n}"
        subprocess.run([sys.executable, str(ROOT / "scripts" / "make_sample_county.py"), "--out", str(f),
                        "--transformers", str(n), "--seed", "1", "-q"], check=True)
        folders.append((f"generated, {n} 台区", f))
    return folders
