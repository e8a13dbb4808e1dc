"""The simulator against a client nobody here wrote: Kannel's bearerbox + smsbox, over SMPP (one
transceiver bind, or transmitter + receiver binds) and over CIMD2.

Each test starts its own simulator and Kannel on free loopback ports: sendsms (smsbox HTTP) of GSM
text with escape characters, Polish UCS-2 and a 3-part text, each with a dlr-mask and a dlr-url to
`HttpSink`; MOs injected with `smsgw simulator send-mo` reaching smsbox's get-url; a simulator
restart while Kannel is bound, after which the next delivery report must still reach Kannel; and
failure-only receipts (dlr-mask 2).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.config import SimulatorSection
from smsc.simulator import Simulator
from tests.fakes.kannel import HttpSink, Kannel, free_port, http_sink, kannel

ROOT = Path(__file__).resolve().parents[1]
LINKS = ["trx", "tx+rx", "cimd2"]
ME = "+48100200300"
GSM_TEXT = "Price [10€] {a|b} ~^\\ ok"
POLISH = "Zażółć gęślą jaźń – ĄĘŁŃÓŚŹŻ"
LONG = " ".join(f"word{i:03d}" for i in range(50))  # 399 GSM characters: 3 parts
DLR_OK, DLR_FAILED = b"1", b"2"  # Kannel's %d


@dataclass
class Setup:
    sim: Simulator
    kannel: Kannel
    sink: HttpSink
    link: str
    ports: dict[str, int]
    directory: Path

    async def send(self, to: str, text: str, tag: str, *, dlr_mask: int = 3, ucs2: bool = False) -> None:
        dlr_url = self.sink.url("/dlr", f"tag={tag}&type=%d")
        params = {"from": ME, "to": to, "text": text, "dlr-mask": str(dlr_mask), "dlr-url": dlr_url}
        if ucs2:
            params["coding"] = "2"
        await self.kannel.sendsms(**params)

    async def dlrs(self, tag: str, n: int = 1) -> list[bytes]:
        """Wait for `n` delivery reports for `tag`; their types."""
        try:
            await self.sink.wait_for(lambda _: len(self.sink.matching("/dlr", tag=tag)) >= n)
        except TimeoutError:
            pytest.fail(f"no DLR for {tag}: {self.sink.requests}\n{self.kannel.logs()}")
        return [r.params["type"] for r in self.sink.matching("/dlr", tag=tag)]

    async def received(self, n: int) -> list[dict[str, object]]:
        """Wait until the simulator took `n` parts in all."""
        async with asyncio.timeout(15):
            while len(self.sim.core.records) < n:
                await asyncio.sleep(0.02)
        return self.sim.core.records

    async def restart_simulator(self) -> None:
        await self.sim.stop()
        self.sim = await start_simulator(self.directory, self.ports)

    async def bound(self) -> None:
        """Wait until Kannel is logged in to the (current) simulator, with every bind it uses."""
        smpp, core = self.sim.smpp, self.sim.core
        want = {"trx": ["trx"], "tx+rx": ["rx", "tx"], "cimd2": []}[self.link]
        try:
            async with asyncio.timeout(15):
                while True:
                    modes = sorted(m for m, _, status in smpp.stats.binds if status == 0)
                    if set(modes) >= set(want) and (self.link != "cimd2" or core._pick("cimd2")):
                        return
                    await asyncio.sleep(0.02)
        except TimeoutError:
            pytest.fail(f"Kannel did not log in: {smpp.stats.binds}\n{self.kannel.logs()}")

    async def send_mo(self, source: str, text: str) -> None:
        """`smsgw simulator send-mo`, as an operator would type it."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway.cli.main", "-c", str(self.directory / "smsgw.toml"),
            "simulator", "send-mo", "--from", source, "--to", ME, text,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(proc.communicate(), 15)
        assert proc.returncode == 0, out.decode()


async def start_simulator(directory: Path, ports: dict[str, int]) -> Simulator:
    # A report written together with the submit's answer waits in Kannel's CIMD2 buffer until more
    # bytes arrive (it polls the socket, not its buffer), so the reports come a moment later.
    cfg = SimulatorSection(smpp_port=ports["smpp"], cimd2_port=ports["cimd2"],
                           control_port=ports["control"], dlr_delay_seconds=0.05)  # fmt: skip
    sim = Simulator(cfg, directory / "simulator.jsonl")
    await sim.start()
    return sim


@contextlib.asynccontextmanager
async def setup(tmp_path: Path, link: str) -> AsyncIterator[Setup]:
    ports = {"smpp": free_port(), "cimd2": free_port(), "control": free_port()}
    (tmp_path / "smsgw.toml").write_text(f"[simulator]\ncontrol_port = {ports['control']}\n")
    get_url = "/mo?from=%p&to=%P&coding=%c&text=%b"
    async with http_sink() as sink:
        sim = await start_simulator(tmp_path, ports)
        s: Setup | None = None
        try:
            smsc_port = ports["cimd2" if link == "cimd2" else "smpp"]
            url = sink.url(*get_url.split("?"))
            async with kannel(tmp_path / "kannel", link=link, smsc_port=smsc_port, get_url=url) as k:
                s = Setup(sim, k, sink, link, ports, tmp_path)
                await s.bound()
                yield s
        finally:
            await (s.sim if s else sim).stop()


@pytest.mark.parametrize("link", LINKS)
async def test_sendsms_with_dlrs_and_mos(tmp_path: Path, link: str) -> None:
    # GSM with escapes, UCS-2 and a 3-part text arrive as sent, each with a DELIVRD report at its
    # dlr-url; a national destination is read in the region; MOs (GSM, and a long UCS-2 one that
    # Kannel must reassemble) injected with `smsgw simulator send-mo` reach the get-url.
    async with setup(tmp_path, link) as s:
        await s.send("+48601123451", GSM_TEXT, "gsm")
        await s.send("+48601123452", POLISH, "ucs2", ucs2=True)
        await s.send("+48601123453", LONG, "long")
        records = await s.received(5)
        by_dest: dict[object, list[dict[str, object]]] = {}
        for r in records:
            by_dest.setdefault(r["destination"], []).append(r)
        assert [r["text"] for r in by_dest["+48601123451"]] == [GSM_TEXT]
        assert [(r["text"], r["data_coding"]) for r in by_dest["+48601123452"]] == [(POLISH, 8)]
        parts = sorted(by_dest["+48601123453"], key=lambda r: r["concat"]["seq"])  # type: ignore[index]
        assert [r["concat"]["total"] for r in parts] == [3, 3, 3]  # type: ignore[index]
        assert "".join(str(r["text"]) for r in parts) == LONG
        for tag in ("gsm", "ucs2", "long"):
            assert set(await s.dlrs(tag)) == {DLR_OK}
        if link != "cimd2":  # SMPP carries TON/NPI: Kannel sends a national number as it was typed
            await s.send("601123490", "national", "national")
            assert (await s.dlrs("national")) == [DLR_OK]
            assert s.sim.core.records[-1]["destination"] == "+48601123490"

        await s.send_mo("+48601123454", "Hello {gateway}")
        long_mo = "Ćma " * 75  # 300 characters of UCS-2: 5 parts
        await s.send_mo("+48601123455", long_mo)
        await s.sink.wait_for(lambda _: len(s.sink.matching("/mo")) >= 2)
        mos = {r.params["from"].decode(): r for r in s.sink.matching("/mo")}
        assert mos["+48601123454"].text() == "Hello {gateway}"
        assert mos["+48601123455"].text() == long_mo
        assert {r.params["to"] for r in mos.values()} == {ME.encode()}


@pytest.mark.parametrize("link", LINKS)
async def test_restart_while_bound_and_failure_only_receipts(tmp_path: Path, link: str) -> None:
    # One report, then the simulator restarts under a bound Kannel: the next report must still be
    # taken (Kannel's CIMD2 receive counter survives the reconnect). Then dlr-mask 2 (failures only):
    # the failed part's report arrives, the delivered one's never does, and over SMPP the simulator
    # does not even send it (registered_delivery 2).
    async with setup(tmp_path, link) as s:
        await s.send("+48601123461", "before", "before")
        assert (await s.dlrs("before")) == [DLR_OK]
        await s.restart_simulator()
        await s.bound()
        await s.send("+48601123462", "after", "after")
        assert (await s.dlrs("after")) == [DLR_OK]

        await s.send("+48601123463", "fine", "fine", dlr_mask=2)
        await s.received(2)
        await s.send("+48601123413", "broken", "broken", dlr_mask=2)
        assert (await s.dlrs("broken")) == [DLR_FAILED]
        await s.send("+48601123464", "marker", "marker", dlr_mask=1)
        assert (await s.dlrs("marker")) == [DLR_OK]  # reports go out in order: "fine" had its turn
        assert s.sink.matching("/dlr", tag="fine") == []
        if link != "cimd2":  # CIMD2 (Kannel asks 056=14 whatever the mask) has no failure-only request
            smpp = s.sim.smpp  # the marker's receipt is out: wait until all sent are answered

            def reports() -> int:
                return sum(kind == "report" for kind, _ in smpp.stats.deliver_responses)

            await smpp.wait_until(
                lambda: reports() >= 3 and all(x.pending_deliveries == 0 for x in smpp.sessions)
            )
            assert reports() == 3  # after, broken, marker
