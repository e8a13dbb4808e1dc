"""An SMSC that answers our bind with a generic_nack numbered 0 refused the bind: the link says so,
with the SMSC's status, not that nothing answered. SMPP 3.4 lets a peer that cannot read a PDU's
header number its generic_nack 0; while we bind no enquire_link of ours waits, so that answer is the
bind's. It was taken for no answer: the bind waited out the response timeout and the link said "no
answer to bind ...: is host:port an SMPP port?" of a port that had answered in SMPP. A real listener
on 127.0.0.1 that answers the first bytes it reads with that generic_nack."""

from __future__ import annotations

from smsc.smpp.codec import generic_nack
from smsc.smpp.pdu import ESME_RINVCMDID, status_text
from tests.test_link_foreign_peer import last_error, other_service


async def test_a_generic_nack_numbered_0_to_our_bind_is_its_refusal_with_its_status() -> None:
    async with other_service(answer=generic_nack(0, ESME_RINVCMDID)) as port:
        error, _logs = await last_error("smpp", port)
    assert error == f"bind refused: {status_text(ESME_RINVCMDID)}", error
