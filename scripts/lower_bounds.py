"""Write a pip constraints file pinning every dependency of setup.cfg to its declared lower bound.

CI installs gridplan once more with these constraints and runs the test suite on them, so the
``>=`` bounds in setup.cfg are versions that really work, not wishes::

    python3 scripts/lower_bounds.py --extras dask,test,browser > constraints.txt
    pip install -c constraints.txt -e ".[dask,test,browser]"

Only the standard library is used (it runs before anything is installed). A requirement without a
``>=`` bound is left to the resolver; ``NAME[extra]>=V`` pins ``NAME==V``.
"""

from __future__ import annotations

import argparse
import configparser
import re
import sys
from pathlib import Path

__all__ = ["lower_bounds", "main"]

_REQ = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(.*)$")
_LOWER = re.compile(r">=\s*([0-9][0-9A-Za-z.+!-]*)")


def _requirements(text: str) -> list[str]:
    """Non-empty, non-comment lines of a setup.cfg requirement list."""
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line]


def lower_bounds(setup_cfg: Path, *, extras: tuple[str, ...] = ()) -> dict[str, str]:
    """Return ``{name: lower bound}`` of ``install_requires`` and the given extras.

    Parameters
    ----------
    setup_cfg
        The project's setup.cfg.
    extras
        Names of ``[options.extras_require]`` entries to include.

    Returns
    -------
    dict
        Package name (as written) to the version of its ``>=`` bound.

    Raises
    ------
    KeyError
        When an extra is not declared.
    """
    cfg = configparser.ConfigParser()
    cfg.read(setup_cfg, encoding="utf-8")
    reqs = _requirements(cfg.get("options", "install_requires", fallback=""))
    for extra in extras:
        reqs += _requirements(cfg["options.extras_require"][extra])
    out: dict[str, str] = {}
    for req in reqs:
        m = _REQ.match(req.split(";", 1)[0])
        if not m:
            continue
        low = _LOWER.search(m.group(2))
        if low:
            out[m.group(1).lower()] = low.group(1)
    return out


def main(argv: list[str] | None = None) -> int:
    """Print the constraints (``name==version`` lines) to standard output."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--setup-cfg", type=Path, default=Path(__file__).resolve().parent.parent / "setup.cfg")
    ap.add_argument("--extras", default="", help="comma-separated extras to include, e.g. dask,test")
    args = ap.parse_args(argv)
    extras = tuple(e for e in args.extras.split(",") if e)
    try:
        pins = lower_bounds(args.setup_cfg, extras=extras)
    except KeyError as exc:
        sys.stderr.write(f"unknown extra {exc} in {args.setup_cfg}\n")
        return 2
    sys.stdout.write("".join(f"{name}=={ver}\n" for name, ver in sorted(pins.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
