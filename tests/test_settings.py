"""Params validated when made; each parameter declared once (section, help, option, checks)."""

from __future__ import annotations

import dataclasses

import pytest

from gridplan import InputError, Params, read_params
from gridplan.settings import SECTION_OF


def test_params_are_validated_when_made():
    with pytest.raises(InputError) as exc:
        Params(capacity=-5, tolerance=3)
    text = exc.value.format()
    assert "capacity must be > 0, got -5" in text and "set plan.capacity to a positive workload" in text
    assert "tolerance must be in (0, 1), got 3" in text


@pytest.mark.parametrize("kwargs, words", [
    ({"scope": "county"}, "scope must be 'township' or 'station'"),
    ({"seed": -1}, "seed must be >= 0"),
    ({"time_limit": 0}, "time_limit must be > 0"),
    ({"capacity": "abc"}, "[plan] capacity must be a number"),
    ({"detour_factor": 0.5}, "detour_factor must be >= 1"),
    ({"area_class": "郊区"}, "area_class must be one of"),
    ({"coords_by_layer": {"rivers": "gcj02"}}, "coords_by_layer names unknown layer(s): rivers"),
])
def test_every_way_of_making_params_checks_them(kwargs, words):
    for make in (lambda: Params(**kwargs), lambda: Params().replace(**kwargs),
                 lambda: dataclasses.replace(Params(), **kwargs)):
        with pytest.raises(InputError, match=words.replace("[", r"\[").replace("(", r"\(")
                           .replace(")", r"\)")):
            make()


def test_read_params_names_the_file(tmp_path):
    toml = tmp_path / "gridplan.toml"
    toml.write_text("[plan]\ntime_limit = -5\n", encoding="utf-8")
    with pytest.raises(InputError) as exc:
        read_params(toml)
    assert exc.value.problems[0].file == "gridplan.toml"
    with pytest.raises(InputError) as exc:
        read_params(None, capacity=-1)
    assert exc.value.problems[0].file == "parameters"
    assert Params().capacity == 1500.0  # the source label does not leak into later Params


def test_a_key_under_another_section_names_its_own(tmp_path):
    toml = tmp_path / "gridplan.toml"
    toml.write_text("[hv]\ncapacity = 900\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"'capacity' belongs under \[plan\], not \[hv\]"):
        read_params(toml)


def test_every_parameter_is_declared_with_section_and_help():
    for f in dataclasses.fields(Params):
        assert f.metadata.get("section") in ("input", "plan", "hv", "managers", "response", "map"), f.name
        assert f.metadata.get("help"), f.name
        assert SECTION_OF[f.name] == f.metadata["section"]


def test_defaults_are_valid_and_unchanged():
    p = Params()
    assert (p.capacity, p.tolerance, p.scope, p.seed, p.segment_cap_km) == (1500.0, 0.05, "township", 0, 15.0)
    assert read_params(None) == p


def test_plan_options_are_derived_from_params():
    from click.testing import CliRunner

    from gridplan.cli import main
    from gridplan.cli.options import CLI_PARAMS
    from gridplan.cli.plan import plan_cmd

    by_name = {p.name: p for p in plan_cmd.params}
    fields = {f.name: f for f in dataclasses.fields(Params)}
    for name in CLI_PARAMS:
        opt = by_name[name]
        assert list(opt.opts + opt.secondary_opts) == list(fields[name].metadata["cli"])
        assert opt.help == fields[name].metadata["help"] and opt.default is None
    # the options the command had before they were derived: same names
    assert {o for p in plan_cmd.params for o in p.opts} >= {
        "--coords", "--layer-coords", "--coords-by-layer", "--capacity", "--workload", "--tolerance",
        "--scope", "--segment-cap-km", "--segment-weight", "--segment-cap", "--hv-owner", "--seed",
        "--basemap", "--stability"}
    out = CliRunner().invoke(main, ["plan", "--help"], terminal_width=200).output
    assert "Maximum workload per manager (grid)." in out and "[township|station]" in out


def test_bad_option_values_are_input_errors(tmp_path):
    from click.testing import CliRunner

    from gridplan.cli import main

    county = tmp_path / "county"
    county.mkdir()
    result = CliRunner().invoke(main, ["plan", str(county), "--out", str(tmp_path / "o"),
                                       "--capacity", "-5", "--tolerance", "3"])
    assert result.exit_code == 2 and "capacity must be > 0" in result.output
    assert "tolerance must be in (0, 1)" in result.output
    assert isinstance(result.exception, SystemExit) and not (tmp_path / "o").exists()
