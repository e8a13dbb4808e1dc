"""A restore over a month billed before names that do not print as themselves had their id after them.

Since 0.2.43 the summary's line and the file's header of an account such as `Best\\u00a0Sp` read
`Best Sp~7`; the releases before wrote `Best Sp`. The restore looked its line up only in the new form:
a month billed before the upgrade was taken as not whole, and billed again at the next start (mailed
again where the month had no `_mailed` record). The CLI in processes, real SQLite files, the billing
files on disk as the release before wrote them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from billing_reports.mailedrecord import RECORD
from gateway.store.db import Store
from tests.billing_world import at, cli, prepare
from tests.conftest import free_port
from tests.test_restore_billing_lost import lose

NBSP = "Best\u00a0Sp"


def _resealed(data: bytes) -> bytes:
    """`data` with its last line's checksum made that of the lines before it, as the writer seals."""
    body = data[: data[:-1].rfind(b"\n") + 1]
    head = data[len(body) : -1].decode().rsplit("sha256:", 1)[0]
    return body + f"{head}sha256:{hashlib.sha256(body).hexdigest()}\n".encode()


def _as_before(directory: Path, tagged: bytes) -> None:
    """The month's files as the release before wrote them: the name printed, no `~id`."""
    [file] = [p for p in directory.iterdir() if p.suffix == ".txt" and p.name != "_summary.txt"]
    data = _resealed(file.read_bytes().replace(b"# account\t" + tagged, b"# account\tBest Sp"))
    assert data != file.read_bytes()
    file.write_bytes(data)
    lines = (directory / "_summary.txt").read_bytes().split(b"\n")
    [at_] = [i for i, line in enumerate(lines) if line.startswith(tagged + b"\t")]
    cols = lines[at_].split(b"\t")
    cols[0], cols[-1] = b"Best Sp", hashlib.sha256(data[: data[:-1].rfind(b"\n") + 1]).hexdigest().encode()
    lines[at_] = b"\t".join(cols)
    (directory / "_summary.txt").write_bytes(_resealed(b"\n".join(lines)))


@pytest.mark.parametrize("recorded", [True, False])
def test_a_month_billed_before_the_ids_is_whole_to_a_restore(tmp_path: Path, recorded: bool) -> None:
    path, cfg = prepare(tmp_path, free_port(), last_billed="2026-02", traffic={NBSP: [at(2026, 3, 3, 8)]})
    store = Store.open(cfg.db_path)
    try:
        [account_id] = [a.id for a in store.accounts.list_accounts() if a.name == NBSP]
    finally:
        store.close()
    backup = tmp_path / "backup.db"
    assert (res := cli(path, "backup", str(backup))).returncode == 0, res.stderr
    assert (res := cli(path, "billing", "run", "--month", "2026-03", "--send")).returncode == 0, res.stderr
    directory = cfg.billing_dir / "2026-03"
    _as_before(directory, f"Best Sp~{account_id}".encode())
    if not recorded:  # a month of a release before 0.2.39, which wrote no record
        (directory / RECORD).unlink()
    lose(cfg.db_path, "missing")
    res = cli(path, "restore", str(backup))
    assert res.returncode == 0, res.stderr
    assert "the files of 2026-03 on disk are not whole" not in res.stdout, res.stdout
    assert "taken as done" in res.stdout, res.stdout
