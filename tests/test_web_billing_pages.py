"""The billing page a year at a time, its file work off the loop, its comparisons remembered.

The operator's /billing listed 35 months (10,500 files) in one page, stat'ed each file, read each
account file's end and hashed each summary, on the loop: 1.0-1.6 s a load, 1.2 MB of HTML, and every
SMTP reply waited as long.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import time
from pathlib import Path

import pytest

from billing_reports.mailed import ends_with
from billing_reports.repo import mailed_key
from billing_reports.writer import SUMMARY, month_dir
from gateway.web import billing as billing_module
from gateway.web import billingfiles
from gateway.web.app import WebContext
from tests.web_helpers import ADMIN, OPERATOR, as_user
from tests.web_helpers import web as web  # the fixture

ROW = re.compile(r'href="/billing/([0-9]{4}-[0-9]{2})/([^"?]+)" download>')


def _months_back(web: WebContext, n: int) -> list[str]:
    """This month's files copied to the `n` months before it; every month, newest first."""
    state, month = web.config.state_dir, web.store.month  # type: ignore[attr-defined]
    made = [month]
    for _ in range(n):
        made.append(made[-1].previous())
        shutil.copytree(month_dir(state, made[0]), month_dir(state, made[-1]))
    return [str(m) for m in made]


async def test_the_billing_page_lists_twelve_months_a_page_and_links_the_older_ones(web: WebContext) -> None:
    every = _months_back(web, 13)  # 14 months
    async with as_user(web, OPERATOR) as c:
        first = (await c.get("/billing")).text
        listed = ROW.findall(first)
        assert sorted({m for m, _ in listed}, reverse=True) == every[:12]
        assert len(listed) == 12 * 3  # acme's, rival's and the summary, each month
        older = re.search(r'href="(/billing\?before=[0-9-]+)" id="billing-older"', first)
        assert older and older.group(1) == f"/billing?before={every[11]}", first
        assert 'id="billing-newest"' not in first
        second = (await c.get(older.group(1))).text
        rest = ROW.findall(second)
        assert sorted({m for m, _ in rest}, reverse=True) == every[12:]
        assert 'id="billing-older"' not in second and 'href="/billing" id="billing-newest"' in second
        # Every file of every month, once, across the pages, with its size as before.
        assert sorted(listed + rest) == sorted(
            (m, n) for m in every for n in ("acme.txt", "rival.txt", SUMMARY)
        )
        assert re.search(r"<td>[0-9]+ bytes</td>", second)
        r = await c.get("/billing?before=2026-13")
        assert r.status_code == 400 and "give YYYY-MM" in r.text
    async with as_user(web, ADMIN) as c:  # a company admin's pages: the own file of each month
        listed = ROW.findall((await c.get("/billing")).text)
        assert listed == [(m, "acme.txt") for m in every[:12]]


async def test_the_billing_pages_file_work_does_not_hold_the_loop(
    web: WebContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The summary of an ended month, mailed, is hashed to tell whether it changed since. A disk that
    # takes 1.5 s to read it (a FIFO in its place did, until the page listed only regular files):
    # read on the loop, the loop stood still for as long (and nothing else of the daemon ran).
    _, ended = _months_back(web, 1)
    summary = month_dir(web.config.state_dir, web.store.month.previous()) / SUMMARY  # type: ignore[attr-defined]
    summary.write_bytes(b"# smsgw billing summary, not the one mailed\n")

    def mark() -> None:
        web.store.db.conn.execute(
            "INSERT INTO billing_state (key, value) VALUES (?, ?)",
            (mailed_key(ended, "summary"), "0" * 64 + " 1700000000"),
        )

    await web.store.write(mark)
    read = billing_module.file_sha256

    def slow_disk(path: Path, sha256: str) -> bool:
        time.sleep(1.5)
        return read(path, sha256)

    monkeypatch.setattr(billing_module, "file_sha256", slow_disk)
    gaps: list[float] = []

    async def tick() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.02)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    async with as_user(web, OPERATOR) as c:
        ticker = asyncio.create_task(tick())
        try:
            page = (await c.get("/billing")).text
        finally:
            ticker.cancel()
    # Held, the loop did not tick at all until the file was read.
    assert len(gaps) > 10 and max(gaps) < 0.5, gaps[:3]
    assert re.search(rf'{ended}/_summary.txt" download>[^<]*</a> <em class="changed">', page), page


def test_a_files_comparison_is_remembered_until_the_file_is_written_again(tmp_path: Path) -> None:
    path = tmp_path / "acme.txt"
    path.write_text("end\t3\tsha256:abc\n")
    calls: list[Path] = []

    def counted(p: Path, sha: str) -> bool:
        calls.append(p)
        return ends_with(p, sha)

    counted.__name__ = "ends_with"
    assert billingfiles.same(counted, path, "abc") and billingfiles.same(counted, path, "abc")
    assert len(calls) == 1
    assert not billingfiles.same(counted, path, "def") and len(calls) == 2  # another mark
    fresh = tmp_path / "acme.txt.new"  # written again as billing writes: beside it, then renamed
    fresh.write_text("end\t4\tsha256:def\n")
    fresh.replace(path)
    assert not billingfiles.same(counted, path, "abc") and len(calls) == 3
    assert billingfiles.same(counted, path, "def") and len(calls) == 4


async def test_a_file_rewritten_in_place_is_listed_as_it_is_now(web: WebContext) -> None:
    # A month's listing was remembered by its directory's mtime alone: a bill an admin rewrote in place
    # (`cp` over it, an editor) changes no directory, and the page went on showing the old size.
    acme = month_dir(web.config.state_dir, web.store.month) / "acme.txt"  # type: ignore[attr-defined]
    async with as_user(web, OPERATOR) as c:
        before = (await c.get("/billing")).text
        size = acme.stat().st_size
        assert f"<td>{size} bytes</td>" in before, before
        mtime = os.stat(acme.parent).st_mtime_ns
        with acme.open("a") as f:  # in place: same inode, the directory untouched
            f.write("# corrected by hand\n")
        os.utime(acme.parent, ns=(mtime, mtime))
        after = (await c.get("/billing")).text
    assert f"<td>{acme.stat().st_size} bytes</td>" in after, after
