"""Another user of the machine cannot steer where the bills are written, nor read them, through
`[gateway] billing_dir`.

Found by attack: with a billing_dir every user could write, a local user made the next month's
directory first (it stayed theirs whatever mode the run gave it) and put links in it, at the file's
name and at the temporary name the run wrote first (`.acme.txt.<pid>.tmp`, the pid in smsgw.pid,
opened to truncate): the run overwrote a root-owned file with a bill, or wrote a company's bill into
a file that user reads; under systemd the link could point at the database. Now the run refuses a
directory that is another user's or that held links it did not make, writes through a name no one
can foresee (O_EXCL), `check-config` and the start name such a billing_dir, and the panel serves
only regular files.

Real files, `smsgw` run as a real process; the other user is `nobody` (root makes the files theirs,
as in CI).
"""

from __future__ import annotations

import os
from pathlib import Path

from gateway.web.app import WebContext
from tests.billing_world import at
from tests.billing_world import cli as smsgw
from tests.test_billing import add_account, mt, setup
from tests.test_planted_files import NOBODY, as_root
from tests.web_helpers import OPERATOR, as_user, panel_store, web_context

pytestmark = as_root


def world(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A billing_dir open to every user, an account with February's traffic, and a root-only file."""
    books = tmp_path / "books"
    books.mkdir()
    _, store, _, config = setup(tmp_path, at(2026, 2, 1), billing_dir=str(books))
    mt(store, add_account(store), at(2026, 2, 3))
    store.close()
    books.chmod(0o777)
    victim = tmp_path / "victim.conf"
    victim.write_text("root's own settings\n")
    victim.chmod(0o600)
    return config, books, victim


def as_nobody(path: Path) -> None:
    os.chown(path, NOBODY, NOBODY, follow_symlinks=False)


def test_a_month_directory_made_first_by_another_user_is_refused(tmp_path: Path) -> None:
    config, books, victim = world(tmp_path)
    month = books / "2026-02"
    month.mkdir()
    month.chmod(0o777)
    as_nobody(month)
    for name in ("acme.txt", *(f".acme.txt.{pid}.tmp" for pid in range(os.getpid(), os.getpid() + 400))):
        (month / name).symlink_to(victim)
        as_nobody(month / name)
    books.chmod(0o755)  # open while they planted; closed since (an open one is refused at once: below)
    res = smsgw(config, "billing", "run", "--month", "2026-02")
    assert res.returncode != 0 and "Traceback" not in res.stderr, res.stderr
    assert f"billing directory {month} belongs to user nobody" in res.stderr, res.stderr
    assert victim.read_text() == "root's own settings\n"  # nothing written through the links
    assert (victim.stat().st_mode & 0o777) == 0o600


def test_links_planted_in_a_directory_open_to_everyone_are_refused(tmp_path: Path) -> None:
    # The month directory is this user's, but every user could write in it: what they put there is not
    # followed (the directory is narrowed to 0750, and the run stops until an admin looks).
    config, books, victim = world(tmp_path)
    month = books / "2026-02"
    month.mkdir()
    month.chmod(0o777)
    (month / "acme.txt").symlink_to(victim)
    as_nobody(month / "acme.txt")
    books.chmod(0o755)
    res = smsgw(config, "billing", "run", "--month", "2026-02")
    assert res.returncode != 0 and "Traceback" not in res.stderr, res.stderr
    assert f"billing directory {month} was writable by every user (0777, now narrowed)" in res.stderr
    assert f"acme.txt (a symbolic link to {victim})" in res.stderr
    assert victim.read_text() == "root's own settings\n"
    assert (month.stat().st_mode & 0o7777) == 0o750


def test_a_billing_dir_open_to_everyone_is_named_and_not_written_to(tmp_path: Path) -> None:
    config, books, _victim = world(tmp_path)
    for args in (("check-config",), ("billing", "run", "--month", "2026-02")):
        res = smsgw(config, *args)
        assert res.returncode == 3 and "Traceback" not in res.stderr, (args, res.stderr)
        assert f"[gateway] billing_dir: {books} is writable by every user (0777)" in res.stderr, res.stderr
        assert f"chmod o-w {books}" in res.stderr
    assert list(books.iterdir()) == []
    books.chmod(0o775)  # as the message says
    assert smsgw(config, "check-config").returncode == 0
    res = smsgw(config, "billing", "run", "--month", "2026-02")
    assert res.returncode == 0, res.stderr
    # Written through a temporary name of its own, none left behind.
    assert sorted(p.name for p in (books / "2026-02").iterdir()) == ["_summary.txt", "acme.txt"]
    assert ((books / "2026-02").stat().st_mode & 0o7777) == 0o750


def test_check_config_names_a_billing_dir_of_another_user(tmp_path: Path) -> None:
    config, books, _victim = world(tmp_path)
    books.chmod(0o750)
    as_nobody(books)
    res = smsgw(config, "check-config")
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert f"[gateway] billing_dir: {books} belongs to user nobody" in res.stderr, res.stderr


async def test_the_panel_serves_no_link_in_place_of_a_bill(tmp_path: Path) -> None:
    store = panel_store(tmp_path)  # this month's files, written under <state_dir>/billing
    web = web_context(tmp_path, store)
    month = str(store.month)  # type: ignore[attr-defined]
    secret = tmp_path / "secret.txt"
    secret.write_text("not a bill\n")
    directory = tmp_path / "billing" / month
    assert (directory / "rival.txt").is_file()
    (directory / "rival.txt").unlink()
    (directory / "rival.txt").symlink_to(secret)
    web = WebContext(web.config, store, web.guard, links=web.links)
    try:
        async with as_user(web, OPERATOR) as c:
            linked = await c.get(f"/billing/{month}/rival.txt")
            kept = await c.get(f"/billing/{month}/acme.txt")
    finally:
        web.counts.close()
        store.close()
    assert linked.status_code == 404 and b"not a bill" not in linked.content
    assert kept.status_code == 200
