"""A rule check over the source, not a test of behaviour: ARCHITECTURE.md section 3 says that a feature
package owns its tables' SQL, and that the store is what the features are built on. Nothing else
says when a change breaks either, so this reads the modules (their syntax tree, no import) and
fails when:

- a module outside `gateway/premium/` names a premium table, or one outside `gateway/conversations/`
  a conversations table, in an SQL string, or as a table name on its own in a tuple or list (a name
  put into SQL later); the schema and the migrations, which create every table, and the migrations'
  estimates of what they write, aside;
- a module of `gateway/store/` imports a feature package, at the top or inside a function.

What is still left is listed below with why; an entry no longer needed fails too, so the lists only
shrink.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("gateway", "smsc", "acl", "billing_reports")

# Each feature package and the tables it owns (its migrations and its repository modules).
OWNED = {
    "gateway/premium/": (
        "premium_services",
        "premium_reply_acl",
        "premium_verifications",
        "premium_mo",
        "premium_answers",
        "premium_corrections",
        "premium_generation",
    ),
    "gateway/conversations/": ("conversations", "kept_phones"),
}
# Where every table is created, feature tables among them: the store's schema and migrations; and
# the migrations' estimates of what each writes (`upgraderoom`), which count the rows of the tables
# a migration indexes (premium_mo for 61) before it runs, as the migrations name them: the estimates
# are one per migration, so they sit beside the migrations and not in a feature, which the store
# would then import.
SCHEMA = re.compile(r"gateway/store/(migrations\w*|freshscript|freshschema|schema|upgraderoom)\.py")
SQL = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|FROM|JOIN|INTO|WHERE)\b")
FEATURES = ("billing_reports", "gateway.privacy", "gateway.premium", "gateway.conversations")

# Modules that still name a feature's tables, and why.
STORE_SQL = "the store's own query reads the feature's rows; moved, the store would import the feature"
SQL_LEFT = {
    "gateway/store/admin.py": STORE_SQL + " (a premium answer's envelope in `message_info`)",
    "gateway/store/segments.py": STORE_SQL + " (the numbers a phone's parts may be addressed to)",
}
# Store modules that still import a feature, and why.
IMPORTS_LEFT: dict[str, str] = {}


def _modules() -> Iterator[tuple[str, ast.Module]]:
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            yield path.relative_to(ROOT).as_posix(), ast.parse(path.read_text(encoding="utf-8"))


def _docstrings(tree: ast.Module) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _names_table(node: ast.Constant, parent: ast.AST | None, table: str) -> bool:
    text = node.value
    if not isinstance(text, str):
        return False
    if text == table:  # a table name on its own: put into SQL later
        return isinstance(parent, ast.Tuple | ast.List | ast.Set)
    return bool(SQL.search(text)) and re.search(rf"\b{table}\b", text) is not None


def foreign_sql() -> dict[str, set[str]]:
    """Module -> the tables of a feature it names in SQL, for modules outside that feature."""
    found: dict[str, set[str]] = {}
    for rel, tree in _modules():
        if SCHEMA.fullmatch(rel):
            continue
        docs = _docstrings(tree)
        parents = {id(child): node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Constant) or id(node) in docs:
                continue
            for package, tables in OWNED.items():
                if rel.startswith(package):
                    continue
                for table in tables:
                    if _names_table(node, parents.get(id(node)), table):
                        found.setdefault(rel, set()).add(table)
    return found


def store_imports() -> dict[str, set[str]]:
    """Module of gateway/store -> the feature modules it imports."""
    found: dict[str, set[str]] = {}
    for rel, tree in _modules():
        if not rel.startswith("gateway/store/"):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            for name in names:
                if any(name == f or name.startswith(f"{f}.") for f in FEATURES):
                    found.setdefault(rel, set()).add(name)
    return found


def test_a_features_tables_are_named_in_sql_only_inside_its_package() -> None:
    found = foreign_sql()
    new = {rel: sorted(tables) for rel, tables in found.items() if rel not in SQL_LEFT}
    assert new == {}, f"move these queries into the package that owns the tables: {new}"
    assert sorted(set(SQL_LEFT) - set(found)) == [], "no longer needed: take them off SQL_LEFT"


def test_the_store_imports_no_feature_built_on_it() -> None:
    found = store_imports()
    new = {rel: sorted(names) for rel, names in found.items() if rel not in IMPORTS_LEFT}
    assert new == {}, f"the store must not import a feature (let the caller pass it): {new}"
    assert sorted(set(IMPORTS_LEFT) - set(found)) == [], "no longer needed: take them off IMPORTS_LEFT"


def test_the_scan_sees_what_it_looks_for() -> None:
    """The rule's own check: SQL naming a table is found, prose and a dict key are not."""
    tree = ast.parse(
        'A = "SELECT id FROM premium_mo WHERE phone = ?"\n'
        'B = "the conversations of a phone"\n'
        'C = ("conversations", "x")\n'
        'D = held["kept_phones"]\n'
    )
    parents = {id(child): node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    hits = sorted(
        (node.lineno, table)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        for tables in OWNED.values()
        for table in tables
        if _names_table(node, parents.get(id(node)), table)
    )
    assert hits == [(1, "premium_mo"), (3, "conversations")]
