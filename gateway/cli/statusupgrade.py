"""`smsgw status` on a database older than this smsgw's with no daemon on it: said, not upgraded.

Every command upgrades an older database it opens, and status did too: 21-27 s with nothing said
before its end for 400,000 answer mails, so a monitoring check under a timeout killed it every time
(as the daemon's start, killed during its upgrade, had been), and the old daemon's status was gone.
Status now reads only the schema, says the database waits for its upgrade and who does it (the
daemon's start, README's Upgrades), and exits 3: no daemon runs.
"""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING

from gateway.cli.statusdaemon import daemon_now, lock_holder, schema_of

if TYPE_CHECKING:
    from gateway.config import Config


def upgrade_waits(cfg: Config, as_json: bool) -> bool:
    """Whether the database waits for its upgrade, said (status then exits 3: no daemon runs);
    False where it does not, and the status is read as usual."""
    from gateway.statusfile import read_status

    if (older := older_schema(cfg)) is None:
        return False
    schema, installed = older
    down = daemon_now(cfg, read_status(cfg.state_dir), time.time(), lock_holder(cfg)) or "not running"
    said = upgrade_words(cfg, schema, installed)
    if as_json:
        report = {"database": str(cfg.db_path), "schema": schema, "installed_schema": installed}
        print(json.dumps({**report, "upgrade": said, "daemon": {"state": down}}, indent=2))
    else:
        print(f"daemon    {down}\nschema    {schema} (this smsgw's: {installed})")
    print(f"smsgw: {said}", file=sys.stderr)
    return True


def older_schema(cfg: Config) -> tuple[int, int] | None:
    """(the database's schema, this smsgw's) where the database is older and no daemon runs on it:
    `status` reads and does not upgrade it. Run as a check under a timeout, its upgrade (minutes on a
    large database, with nothing said before its end) was killed every time, as the daemon's start
    had been. None where it is current, or is not read here (missing, planted, locked: the open
    says why), or a daemon holds it (`common.older_schema_under_a_daemon` says what it does)."""
    from gateway.cli.common import running_pid
    from gateway.store.schema import SCHEMA_VERSION

    version = schema_of(cfg.db_path)
    if version is None or version >= SCHEMA_VERSION or running_pid(cfg) is not None:
        return None
    return version, SCHEMA_VERSION


def upgrade_words(cfg: Config, schema: int, installed: int) -> str:
    """What status says of a database waiting for its upgrade, and who does it (README, Upgrades)."""
    return (
        f"database {cfg.db_path} is at schema {schema}, older than this smsgw's ({installed}): it waits for"
        " its upgrade, which the daemon's start does (`smsgw run`, `systemctl start smsgw` where the unit"
        " is installed); status reads no more of it and does not upgrade it"
    )
