"""Rewrite the documentation generated from the input schema (gridplan/io/schema.py).

Usage: ``python scripts/gen_schema_docs.py`` (from the repository root, or anywhere: paths are taken
from this file). Rewrites the layer table of README.md, the column list of ``County``'s docstring
(gridplan/model.py) and docs/input.md; ``tests/test_schema.py`` fails until this has been run after
a change to the schema.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gridplan.io.schema import write_docs


def main() -> int:
    """Rewrite the generated sections; print the files changed."""
    changed = write_docs(ROOT)
    for path in changed:
        print(f"rewrote {path.relative_to(ROOT)}")
    if not changed:
        print("up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
