"""The login doors' per-account limits, which tell the account holder when they trip.

The buckets live in anmei.common.throttling (keys, rates, client networks); these subclasses add
the one thing common cannot know: whose account it is. A refusal calls
`accounts.services.account_lockout_hand_off` explicitly (once per episode; never turns the 429
into anything else).
"""

from __future__ import annotations

from anmei.accounts.services import account_lockout_hand_off
from anmei.common.throttling import AccountGlobalRateThrottle, AccountRateThrottle


class _TellsTheHolder:
    """A refusal tells the account holder, once per episode (the hand-off dedupes by episode key)."""

    def account_refused(self, *, account: dict, episode_key: str) -> None:
        account_lockout_hand_off(account=account, episode_key=episode_key)


class LoginAccountThrottle(_TellsTheHolder, AccountRateThrottle):
    """Per account and client network; the holder hears of it once per episode."""


class LoginAccountGlobalThrottle(_TellsTheHolder, AccountGlobalRateThrottle):
    """Per account from every network together; the holder hears of it once per episode."""
