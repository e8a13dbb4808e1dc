"""Who may answer a premium SMS (R-4.5): the addresses that could when it arrived.

A vote stays the account's it came in for when its service moves to another account (`premium set
--account`): it was mailed to that client, its commission and its answer are in that account's bill.
Checked against the service's list of the moment, the earlier client's mailbox, which `set --email`
had taken off it, was refused the answers the phones paid for, and the new client's mailbox was let
answer a vote it never got, in the earlier client's name and on its bill. So a vote of another
account than the service's is answered by the list the service had for that account
(`PremiumRepo.keep_as_it_was`), and the new account's users and reply list are told why not.
"""

from __future__ import annotations

from acl.accounts import sender_user
from gateway.premium.repo import PremiumMo, PremiumRepo, Service
from gateway.store.db import Store

# The vote went to the earlier account's client; said so, or the new account's people, on the reply
# list for the votes it gets now, could not tell why their answer was refused. Not by that account's
# name: one company is never told another's (the operator's log and the answer's record name it).
PREMIUM_MOVED = (
    "550 5.7.1 <{}> may not answer this premium SMS: it came in for another account before premium"
    " service {} moved to account {}, whose users answer only the SMS received since"
)


def may_answer(r: PremiumRepo, service: Service, pmo: PremiumMo, senders: tuple[str, ...]) -> bool:
    """Whether one of `senders` (the envelope sender as received and without its BATV tag) could
    answer the vote when it arrived. A vote moved before its list was kept (an older version's
    move) is answered by the mailbox it was mailed to, while the outbox keeps that mail."""
    if pmo.account_id is None or pmo.account_id == service.account_id:
        return any(r.acl_allows(service.id, s) for s in senders if s)
    earlier = r.as_it_was(service, pmo.account_id, pmo.received_at)
    if earlier is not None:
        return any(r.acl_allows(earlier.id, s) for s in senders if s)
    mailed = r.mailed_to(pmo.mo_id)
    return mailed is not None and any(s.casefold() == mailed.casefold() for s in senders if s)


def moved_refusal(
    store: Store, r: PremiumRepo, service: Service, vote_account: str, senders: tuple[str, ...], allowed: bool
) -> tuple[str, str] | None:
    """(reply, reason) for the new account's side answering a vote from before the move: a user of
    the account the service moved to, even one the earlier list named, or an address on its reply
    list now that the earlier one did not name (`allowed`, `may_answer`'s verdict). Either would
    answer in another company's name, on its bill. None for anyone else (refused, if at all, as not
    on the list)."""
    author = senders[0]
    user, _ = sender_user(author, store.accounts.find_user)
    ours = user is not None and user.account_id == service.account_id
    if not ours and (allowed or not any(r.acl_allows(service.id, s) for s in senders if s)):
        return None
    now = store.accounts.account_by_id(service.account_id).name
    why = f"received for account {vote_account} before {service.password} moved to account {now}"
    return PREMIUM_MOVED.format(author, service.password, now), why
