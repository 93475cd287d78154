"""The declarative input schema (gridplan/io/schema.py) and everything derived from it.

The README's layer table, docs/input.md and the column list of ``County``'s docstring are generated
from the schema (``python scripts/gen_schema_docs.py``): these tests fail when they disagree, and a
new column declared once in the schema is read, checked and kept by the loader with no other edit.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from gridplan import County, InputError
from gridplan.io import ALIASES, aliases, load, schema
from gridplan.io.schema import SPECS, Column

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("rel", sorted(schema.generated_sections()))
def test_generated_sections_are_up_to_date(rel):
    begin, end, body = schema.generated_sections()[rel]
    text = (ROOT / rel).read_text(encoding="utf-8")
    assert schema.splice(text, begin, end, body) == text, \
        f"{rel} disagrees with gridplan/io/schema.py: run python scripts/gen_schema_docs.py"


def test_input_reference_is_up_to_date():
    text = (ROOT / "docs" / "input.md").read_text(encoding="utf-8")
    assert text == schema.reference_markdown() + "\n", \
        "docs/input.md disagrees with gridplan/io/schema.py: run python scripts/gen_schema_docs.py"


def test_county_docstring_lists_every_loaded_column():
    doc = County.__doc__ or ""
    for spec in SPECS.values():
        assert f"``{spec.name}``" in doc
        for col in spec.kept:
            assert f"``{col}``" in doc, (spec.name, col)


def test_readme_names_every_column_read_from_a_file():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for spec in SPECS.values():
        for c in spec.fields:
            if not c.derived and c.kind != "coord":
                assert f"`{c.name}`" in readme, (spec.name, c.name)


def test_aliases_are_derived_from_the_schema():
    for layer, spec in SPECS.items():
        assert ALIASES[layer] == schema.aliases_of(spec)
        for c in spec.fields:
            if not c.derived:
                assert c.name in c.names or c.name.startswith("current_"), (layer, c.name)
    assert aliases.ALIASES is ALIASES


def test_the_schema_is_consistent():
    for layer, spec in SPECS.items():
        names = [c.name for c in spec.fields]
        assert len(names) == len(set(names)), layer
        assert spec.id_col is None or spec.id_col in spec.columns, layer
        for c in spec.fields:
            assert c.description, (layer, c.name)
            assert c.default_from is None or c.default_from in names, (layer, c.name)
            if c.kind in ("number", "count") and not c.derived:
                assert c.minimum is not None, (layer, c.name)  # every number had ">= 0" checked
            if c.derived:
                assert not c.required and not c.aliases, (layer, c.name)


def test_limits_live_in_the_schema():
    from gridplan.io import validate as V

    tr = SPECS["transformers"]
    assert tr.column("customers").maximum == V.MAX_CUSTOMERS == schema.MAX_CUSTOMERS
    assert tr.column("capacity_kva").maximum == V.MAX_CAPACITY_KVA


def test_a_new_column_is_one_declaration(tmp_path, monkeypatch):
    """Declared once (names, kind, checks), a column is matched, checked and kept end to end."""
    from countygen import make_county_dir

    tr = SPECS["transformers"]
    meters = Column("meters", "count", ("meters", "电能表数", "表计数"), unit="meters", minimum=0,
                    thousands=True, description="electricity meters of the 台区")
    new = dataclasses.replace(tr, fields=(*tr.fields, meters))
    monkeypatch.setitem(SPECS, "transformers", new)
    monkeypatch.setitem(ALIASES, "transformers", schema.aliases_of(new))

    def with_meters(bad: bool):
        def edit(df):
            df["电能表数"] = [str(10 + i) for i in range(len(df))]
            if bad:
                df.loc[df.index[2], "电能表数"] = "十二"
            return df
        return edit

    good = make_county_dir(tmp_path, edit_ledger=with_meters(False), name="good")
    county = load.load_county(good)
    assert county.transformers["meters"].dtype.kind == "i"
    assert county.transformers["meters"].iloc[0] == 10

    bad = make_county_dir(tmp_path, edit_ledger=with_meters(True), name="bad")
    with pytest.raises(InputError) as exc:
        load.load_county(bad)
    prob = next(p for p in exc.value.problems if "'meters'" in p.what)
    assert "not numbers" in prob.what and "十二" in " ".join(prob.rows)
    assert "transformers" in prob.file


def test_unknown_column_kinds_are_refused():
    with pytest.raises(ValueError, match="unknown kind"):
        Column("x", "date", description="when")


def test_coords_by_layer_knows_every_layer():
    from gridplan.settings import LAYERS

    assert set(LAYERS) == set(SPECS)
