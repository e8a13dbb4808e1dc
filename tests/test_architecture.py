"""The seams in ARCHITECTURE.md, enforced: no path from the network to the SMSC credentials."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DRIVERS = ("smsc.smpp.link", "smsc.cimd2", "smsc.simulator")


def imports(path: Path, *, type_checking: bool = False) -> set[str]:
    """Modules a file imports; those under `if TYPE_CHECKING:` only when `type_checking` is set."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if not type_checking and isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for n in ast.walk(node))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_smtp_and_intake_never_import_link_drivers() -> None:
    # Code that parses network input may plan parts (smsc.encoding) but never reach a link driver.
    smtp_side = (
        "relay.py",
        "compose.py",
        "intake.py",
        "submission.py",
        "textclean.py",
        "automail.py",
        "alerts.py",
        "accept.py",
    )
    for name in smtp_side:
        path = ROOT / "gateway" / "smtp" / name
        bad = {m for m in imports(path) if m.startswith(DRIVERS)}
        assert not bad, f"gateway/smtp/{name} imports {bad}"


def test_smsc_and_acl_import_nothing_from_gateway() -> None:
    # The protocol drivers and the pure ACL decisions stand alone, even for type checking (their
    # settings types live with them); the gateway depends on them.
    offenders = []
    for package in ("smsc", "acl"):
        for path in (ROOT / package).rglob("*.py"):
            bad = {m for m in imports(path, type_checking=True) if m == "gateway" or m.startswith("gateway.")}
            if bad:
                offenders.append(f"{path.relative_to(ROOT)}: {sorted(bad)}")
    assert not offenders, offenders


# What of smsc the store may import: modules that import nothing of smsc or the gateway themselves.
PLAIN_SMSC = {"smsc.logthrottle", "smsc.makers", "smsc.numbermask"}


def test_repositories_import_only_the_store_and_plain_data() -> None:
    # The store sits below intake, dispatch and the listeners: it must not reach up into them.
    banned = (
        "gateway.smtp",
        "gateway.dispatcher",
        "gateway.daemon",
        "gateway.mailer",
        "gateway.outboxworker",
        "gateway.events",
        # The supervisor imports the store (a worker's store trouble) and, through the housekeeping,
        # most of the daemon: systemd's notify and the start's progress live in modules of their own.
        "gateway.supervisor",
    )
    offenders = []
    for path in (ROOT / "gateway" / "store").rglob("*.py"):
        found = imports(path, type_checking=True)
        # The log throttle and the record makers are plain code that import nothing of smsc or the
        # gateway (their home is smsc, as smsc may not import the gateway): the store's unmatched-receipt
        # lines use the one, its claimed parts and accepting write's answer the other; no driver.
        drivers = {m for m in found if m.startswith("smsc.")} - PLAIN_SMSC
        bad = {m for m in found if m.startswith(banned)} | drivers
        if bad:
            offenders.append(f"{path.name}: {sorted(bad)}")
    for module in PLAIN_SMSC:
        found = imports(ROOT.joinpath(*module.split(".")).with_suffix(".py"), type_checking=True)
        if reached := {m for m in found if m.split(".")[0] in ("smsc", "gateway")}:
            offenders.append(f"{module}: {sorted(reached)}")
    assert not offenders, offenders
