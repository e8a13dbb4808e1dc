"""A delivery report's err code is the operator's own: only its stat is put in words.

`UNDELIV err:001` was worded "the phone was unreachable until the message expired": staff read that
of an SMS the simulator (and operators for whom 001 means "unknown subscriber" or "barred") failed in
the same second it was sent, and waited for a phone to come back that never would take it.
"""

from __future__ import annotations

from gateway.reasons import human_reason


def test_undelivered_says_the_operator_could_not_deliver_whatever_the_err_code() -> None:
    assert (
        human_reason("UNDELIV err:001") == "the operator could not deliver it to the phone (UNDELIV err:001)"
    )
    assert human_reason("part 2 of 3: UNDELIV err:034") == (
        "part 2 of 3: the operator could not deliver it to the phone (UNDELIV err:034)"
    )
    assert "unreachable" not in human_reason("UNDELIV err:001")


def test_expired_says_what_may_have_kept_it() -> None:
    expired = "not delivered before it expired (phone off or out of reach, or the operator's delay)"
    assert human_reason("EXPIRED err:001") == f"{expired} (EXPIRED err:001)"
    assert human_reason("EXPIRED") == f"{expired} (EXPIRED)"


def test_a_part_delivered_after_its_bounce_is_said_in_polish_too() -> None:
    # Written as `gateway.store.latecopies` writes it: it stayed English in a Polish panel.
    from gateway.store.settling import TOLD_FAILED, the_rest_said

    rest = the_rest_said([(2, "submitted", None), (3, "cancelled", None)])
    reason = f"{TOLD_FAILED}part 1 of 3 delivered after all; {rest}"
    assert human_reason(reason, "pl") == (
        "zgłoszono niedoręczenie, potem część 1 z 3 jednak doręczono;"
        " część 2: wysłano, raport jeszcze nie nadszedł; część 3: nie wysłano"
    )
    assert human_reason(reason, "en") == reason
