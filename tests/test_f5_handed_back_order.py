"""F5: a phone's SMS handed back unsent as the link drops keep their order after the rebind.

When the SMSC drops the session, the SMS claimed but not yet sent go back to the queue at different
moments: those claimed ahead of the window at once, one waiting for its pacing token when the token
comes (and is refused, unsent). Each was due again a second after its own hand-back, so the SMS
behind the one waiting for its token were due first, and the phone got "4, 5, 6 of 6" before "3 of
6" after the rebind. Now the later SMS to the phone are not due before the earlier one.

A real gateway on 127.0.0.1 and a fake SMPP SMSC on TCP that drops the session on the second submit;
the link's window (2) and rate (4 a second) put one SMS in the pacing wait and three behind it when
the session goes, and its reconnect (1 s) comes after they were all handed back.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import structlog

from tests.conftest import DOMAIN, free_port, mail, make_config, running_gateway
from tests.fakes.smsc import DisconnectingSMSC

PHONE = "601127777"
TEXTS = [f"Shift change {n} of 6" for n in range(1, 7)]


async def test_sms_handed_back_unsent_at_a_drop_reach_the_phone_in_order(tmp_path: Path) -> None:
    port = free_port()
    cfg = make_config(tmp_path, smsc_port=port)
    # The fake SMSC sends no receipt of the submit it drops the session on: it goes again at the rebind.
    link = cfg.smsc[0].model_copy(
        update={"window": 2, "max_per_second": 4, "reconnect_min_seconds": 1.0, "reconnect_max_seconds": 1.0,
                "lost_submit_settle_seconds": 0}
    )  # fmt: skip
    cfg = cfg.model_copy(update={"smsc": [link]})
    with structlog.testing.capture_logs() as logs:
        async with running_gateway(cfg) as gw:
            for text in TEXTS:  # queued before the SMSC is up: the first bind finds them all due
                assert (await gw.send(mail(f"{PHONE}@{DOMAIN}", text))).error is None
            async with DisconnectingSMSC(after=1, times=1, port=port) as smsc:
                await gw.until(lambda: gw.states() == ["delivered"] * 6, timeout=30)
            assert smsc.drops == 1
            submitted = gw.daemon.dispatcher.pacers["main"].sent  # what `status` says went to the SMSC
    assert [s.text for s in smsc.received] == TEXTS
    assert Counter(s.destination for s in smsc.received) == Counter({f"+48{PHONE}": 6})
    # The scenario happened: one handed back as its pacing ended, others claimed ahead at once.
    unsent = [e for e in logs if e["event"] == "mt.deferred" and e.get("unsent")]
    assert unsent, "no SMS was refused unsent by the dropped link"
    # `status` counts as submitted what was written to the SMSC: the six it took and the one it
    # dropped the session on, not the ones refused unsent (a restart's burst read as duplicates).
    assert submitted == len(smsc.received) + smsc.drops == 7, (submitted, len(unsent))
