"""The ``gridplan`` command line: a thin layer over the library, one module per command."""

from __future__ import annotations

import click

from .. import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gridplan")
def main() -> None:
    """gridplan: 供电所服务网格规划 — service-grid planning for township power-supply stations."""


def _register() -> None:
    import importlib

    for name in ("plan", "demo", "wallmap", "board", "history", "merge", "many", "edit"):
        try:
            mod = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:  # a command whose module is not written yet
            if exc.name != f"{__name__}.{name}":
                raise
            continue
        for cmd in getattr(mod, "COMMANDS", ()):
            main.add_command(cmd)


_register()
