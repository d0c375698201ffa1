"""The table catalogue (core/tables.py) is the only module of the package that spells a table name:
in SQL, as an argument of a warehouse helper, or as a constant of its own."""

import ast
import inspect
import re
from pathlib import Path

import pytest

import booking_platform
from booking_platform.core import tables, warehouse
from booking_platform.core.tables import CATALOGUE, Table

PACKAGE = Path(booking_platform.__file__).parent
CATALOGUE_FILE = Path(tables.__file__)
NAMES = "|".join(sorted(map(re.escape, CATALOGUE), key=len, reverse=True))
SQL_NAMING = re.compile(rf'(?i)\b(?:from|into|table|join|update|exists)\s+"?(?:{NAMES})\b')
# every function of the warehouse module takes table names the same way
HELPERS = {
    name
    for name, value in vars(warehouse).items()
    if inspect.isfunction(value) and value.__module__ == warehouse.__name__
}


def _callee(call: ast.Call) -> str:
    function = call.func
    return function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", "")


def _names_in(node: ast.AST) -> list[ast.Constant]:
    """The string constants of an argument that are a table's name (dict keys and list items
    included: replace_slices and publish_slices take them so)."""
    return [
        n
        for n in ast.walk(node)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value in CATALOGUE
    ]


def spelled_table_names(source: str) -> list[tuple[int, str]]:
    """(line, text) of each place `source` spells a table name itself."""
    tree = ast.parse(source)
    # docstrings and comments may name a table in prose: only code is held to the catalogue
    prose = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) not in prose and SQL_NAMING.search(node.value):
                found.append((node.lineno, node.value))
        elif isinstance(node, ast.Call) and _callee(node) in HELPERS:
            arguments = [*node.args, *(k.value for k in node.keywords)]
            found += [(c.lineno, c.value) for a in arguments for c in _names_in(a)]
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            value = node.value
            if isinstance(value, ast.Constant) and value.value in CATALOGUE:
                found.append((node.lineno, value.value))
    return sorted(found)


def test_the_scan_finds_each_way_of_spelling_a_table_name() -> None:
    source = """
PREDICTIONS_TABLE = "predictions"
connection.execute("SELECT count(*) FROM cleaned_bookings")
connection.execute(f'DELETE FROM "net_demand" WHERE as_of = {day}')
warehouse.read_slice(connection, "raw_bookings", as_of)
replace_slices(connection, as_of, {"estimated_performance": frame})
publish_slices(connection, as_of, ["accepted_exports"])
metadata.get("raw_bookings")  # an asset key, not a table
print("predictions as of today")  # a word, not a table
"""
    assert [line for line, _ in spelled_table_names(source)] == [2, 3, 4, 5, 6, 7]


def test_no_module_but_the_catalogue_spells_a_table_name() -> None:
    spelled = {
        f"{path.relative_to(PACKAGE.parent)}:{line}": text
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != CATALOGUE_FILE
        for line, text in spelled_table_names(path.read_text())
    }
    assert spelled == {}


def test_a_sliced_table_is_keyed_by_as_of_first() -> None:
    assert all((t.keys[0] == "as_of") == t.sliced for t in CATALOGUE.values())
    with pytest.raises(ValueError, match="keys start with as_of"):
        Table("oops", ("booking_id",), sliced=True, description="")
