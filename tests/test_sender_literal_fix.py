"""A relay sender at an address literal (demo@[IPv6:::1]) is refused, and the log's fix no longer
names a `smsgw user add` that `user add` refuses (exit 2): no user can have such an address, so the
log suggests no command. Against the real relay port on 127.0.0.1, in acme's network.
"""

from __future__ import annotations

import asyncio
import shlex
from pathlib import Path

from structlog.testing import capture_logs

from gateway.config import parse_config
from tests.conftest import config_text, running_gateway
from tests.test_relay_refusal_advice import mail_from


async def test_a_literal_senders_refusal_suggests_no_user_add(tmp_path: Path) -> None:
    cfg = parse_config(config_text(tmp_path, smsc_port=1), source="test config", base_dir=tmp_path)
    async with running_gateway(cfg) as gw:
        with capture_logs() as logs:
            answers = []
            for sender in ("demo@[IPv6:::1]", "demo@[127.0.0.1]", "nobody@acme.example"):
                answers.append(await asyncio.to_thread(mail_from, gw.port, sender))
                await asyncio.sleep(1.1)  # refusals of one kind are logged at most once a second
    assert all(a.startswith("550 5.7.1") for a in answers), answers
    refused = {e["sender"]: e for e in logs if e["event"] == "smtp.sender_refused"}
    assert set(refused) == {"demo@[IPv6:::1]", "demo@[127.0.0.1]", "nobody@acme.example"}, refused
    assert "fix" not in refused["demo@[IPv6:::1]"], refused["demo@[IPv6:::1]"]
    assert "fix" not in refused["demo@[127.0.0.1]"], refused["demo@[127.0.0.1]"]
    # A sender a user can have still hears the command, which `user add` takes.
    fix = refused["nobody@acme.example"]["fix"]
    assert shlex.split(fix) == ["smsgw", "user", "add", "nobody@acme.example", "--account", "acme"]
