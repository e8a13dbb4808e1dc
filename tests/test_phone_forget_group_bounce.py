"""`phone forget` and a bounce naming several numbers of one mail: the bounce is about the user's own
mail, which keeps its text while a number it went to received it (a bounce naming one number is the
control: it kept its mail's text before grouped bounces existed)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.config import parse_config
from tests.conftest import config_text, mail, running_gateway
from tests.fakes.smsc import FakeSMSC
from tests.test_bounce_group import BOUNCES, DELIVERED, REJECTED, UNDELIVERABLE, number, outbox_rows
from tests.test_process import smsgw

TEXT = "Gate code 4711"


async def forget_each(tmp_path: Path, to: list[str], forget: list[str]) -> tuple[str, list[str], int]:
    """The user's mail's text after each of `forget` was forgotten, what each run printed, and the
    bounces left."""
    path = tmp_path / "config.toml"
    async with FakeSMSC(fail_suffixes=["13"], reject_suffixes=["77"]) as smsc:
        path.write_text(config_text(tmp_path, smsc_port=smsc.port))
        cfg = parse_config(path.read_text(), source=str(path), base_dir=tmp_path)
        async with running_gateway(cfg) as gw:
            conn = gw.store.db.conn
            assert (await gw.send(mail(to, TEXT))).error is None
            settled = sorted("delivered" if a == DELIVERED else "failed" for a in to)
            await gw.until(lambda: sorted(gw.states()) == settled)
            await gw.until(lambda: len(outbox_rows(conn)) == 1)
            printed = []
            for address in forget:
                run = await asyncio.to_thread(smsgw, path, "phone", "forget", number(address), "--yes")
                assert run.returncode == 0, run.stderr
                printed.append(run.stdout)
            (text,) = conn.execute("SELECT text FROM emails ORDER BY id LIMIT 1").fetchone()
            (left,) = conn.execute(f"SELECT count(*) FROM outbox WHERE {BOUNCES}").fetchone()
    return str(text), printed, int(left)


async def test_a_single_bounce_forgotten_keeps_the_mail_a_delivered_number_got(tmp_path: Path) -> None:
    text, _, _ = await forget_each(tmp_path, [REJECTED, DELIVERED], [REJECTED])
    assert TEXT in text


async def test_every_number_of_a_grouped_bounce_forgotten_keeps_the_mail_a_delivered_number_got(
    tmp_path: Path,
) -> None:
    text, printed, _ = await forget_each(
        tmp_path, [REJECTED, UNDELIVERABLE, DELIVERED], [REJECTED, UNDELIVERABLE]
    )
    assert TEXT in text
    assert not any("not sent as SMS" in out for out in printed), printed
