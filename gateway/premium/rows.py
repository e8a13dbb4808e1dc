"""The premium repository's rows: a service, a premium MO and its money, a confirmation token.

Apart from gateway.premium.repo, which reads and writes them (and re-exports them): the repository's
verbs grew past what one module holds, and these are what every part of it hands back.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Service:
    id: int
    password: str
    account_id: int
    email: str
    numbers: str  # space separated; "" = every configured premium number
    verified_at: float | None
    created_at: float
    removed_at: float | None

    @property
    def number_list(self) -> list[str]:
        return self.numbers.split()


@dataclass(frozen=True, slots=True)
class PremiumMo:
    id: int
    mo_id: int
    number: str
    phone: str
    service_id: int | None
    account_id: int | None
    password: str | None
    parts: int
    price: int
    commission: int
    text: str
    state: str
    note: str | None
    token: str | None
    answers: int
    received_at: float
    forwarded_at: float | None


@dataclass(frozen=True, slots=True)
class Verification:
    token: str
    service_id: int
    email: str
    created_at: float
    expires_at: float
    used_at: float | None

    @property
    def replaced(self) -> bool:
        """A newer confirmation mail of its service ended it (`PremiumRepo.new_verification` sets its
        end to no later than its start): its answer is told to answer the newest, not to ask again."""
        return self.expires_at <= self.created_at
