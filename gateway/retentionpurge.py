"""The retention purge as the scheduler runs it: the store's own (`gateway.store.retention`) with the
features' shares passed in, since the store is what the features are built on and imports none of
them (ARCHITECTURE.md section 3). Their order is the purge's: the conversations, then the premium texts.
"""

from __future__ import annotations

from gateway.conversations.queries import purge_old
from gateway.premium.queries import purge_texts
from gateway.store import retention
from gateway.store.db import Store

FEATURES: tuple[retention.FeaturePurge, ...] = (purge_old, purge_texts)


async def purge_before(
    store: Store,
    cutoff: float,
    *,
    chunk: int = retention.CHUNK,
    reply_window: float = 0.0,
    pace: retention.Pace | None = None,
    unbilled_from: float | None = None,
) -> int:
    """`retention.purge_before` with every feature's share: the emails deleted."""
    return await retention.purge_before(
        store,
        cutoff,
        chunk=chunk,
        reply_window=reply_window,
        pace=pace,
        unbilled_from=unbilled_from,
        features=FEATURES,
    )
