"""A CIMD2 part's relative validity is counted on the daemon's clock, which set the part's expiry.

The part's expiry is the daemon's clock at acceptance plus `validity_hours`; the link subtracted the
host's clock from it. A daemon on a clock three days behind the host's (injected here; an admin's
`date -s` handled by the clock check moves the expiries the same way) told the SMSC 5 minutes, the
shortest code, for a part with 24 h left. The daemon against a scripted CIMD2 SMSC over TCP.
"""

from __future__ import annotations

import time
from pathlib import Path

from smsc.cimd2.packet import P
from smsc.cimd2.times import validity_seconds
from tests.conftest import STAFF
from tests.test_cimd2_late_part_sent_apart import texted
from tests.test_cimd2_report_keys import gateway_and_smsc


async def test_the_validity_told_counts_on_the_daemons_clock(tmp_path: Path) -> None:
    def clock() -> float:  # three days behind the host's
        return time.time() - 3 * 86400

    async with gateway_and_smsc(tmp_path, clock=clock) as (gw, operator, _sink):
        await texted(gw, operator, STAFF, 1)
        told = operator.submits[0].packet.get(P.VALIDITY_RELATIVE)
    assert told is not None
    assert validity_seconds(int(told)) == 24 * 3600  # the configured validity, not the 5 min minimum
