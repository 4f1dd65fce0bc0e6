"""Rate limits on credential endpoints: per client address AND per account.

The client address is REMOTE_ADDR unless that is one of our own proxies (settings.TRUSTED_PROXIES,
addresses or CIDRs): only then is X-Forwarded-For read, right to left, skipping our proxies, and the
first address we do not run is the client. A forged X-Forwarded-For from a direct client is ignored,
so a new header per request no longer buys a new throttle bucket.

Per-account limits (scope `<scope>_account`) hold even when an attacker rotates addresses: login
is keyed on (tenant, username), ws-ticket on the user. The same classes guard Django admin's login
(anmei.accounts.apps wraps it), so every password door shares one limit.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from anmei.common.crypto import hash_token


@lru_cache(maxsize=8)
def _networks(spec: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in spec if item.strip())


def trusted_proxy(address: str) -> bool:
    """True when `address` (a peer's socket address) is one of our proxies (settings.TRUSTED_PROXIES)."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in net for net in _networks(tuple(settings.TRUSTED_PROXIES)))


def client_ip(request) -> str:
    """The client's address: REMOTE_ADDR, or the nearest untrusted hop when it came via our proxies."""
    remote = request.META.get("REMOTE_ADDR", "") or "unknown"
    if not trusted_proxy(remote):
        return remote
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    for hop in reversed(hops):
        if not trusted_proxy(hop):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return remote  # garbage from the client side of our proxy: fall back to the proxy
    return remote


class _ScopedThrottle(SimpleRateThrottle):
    """Takes its scope from the view's `throttle_scope` (plus `suffix`)."""

    suffix = ""

    def __init__(self):  # the rate is known only once the view is
        pass

    def allow_request(self, request, view):
        base = getattr(view, "throttle_scope", None)
        if not base:
            return True
        self.scope = base + self.suffix
        if self.scope not in self.THROTTLE_RATES:
            return True
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)


class AuthRateThrottle(_ScopedThrottle):
    """Per client address (see client_ip) on login, register, signup and ws-ticket."""

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": client_ip(request)}


def _field(request, name: str) -> str:
    data = getattr(request, "data", None)
    if data is None or not hasattr(data, "get"):
        data = request.POST
    value = data.get(name) if hasattr(data, "get") else None
    return value if isinstance(value, str) else ""


def client_network(request) -> str:
    """The client's network: its /24 (IPv4) or /64 (IPv6), what one attacker can rotate within."""
    address = client_ip(request)
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    return str(ipaddress.ip_network(f"{ip}/{24 if ip.version == 4 else 64}", strict=False))


class AccountRateThrottle(_ScopedThrottle):
    """Per account and client network (scope `<throttle_scope>_account`).

    The account is the authenticated user, else the (tenant, username) the request names. The
    username is hashed into the key (case-folded), never stored in clear. Keyed with the client's
    network (client_network) too: wrong passwords from one network cannot lock the holder out from
    theirs; AccountGlobalRateThrottle bounds the attempts from every network together.
    """

    suffix = "_account"
    per_network = True

    def get_cache_key(self, request, view):
        key = self._account_key(request)
        if key is None or not self.per_network:
            return key
        return f"{key}:{hash_token(client_network(request))[:16]}"

    def allow_request(self, request, view):
        allowed = super().allow_request(request, view)
        if not allowed and self.key is not None:
            account = self._account(request)
            if account is not None:
                self.account_refused(account=account, episode_key=self._key_for(account, "account_lockout"))
        return allowed

    def account_refused(self, *, account: dict, episode_key: str) -> None:
        """Called when this bucket refuses a request for `account`; a subclass tells the holder.

        `account` is {"user_id": …} for a signed-in user, else {"tenant": slug, "username": name}
        (both case-folded); `episode_key` names the account without the network. Here: nothing
        (common knows no users; anmei.accounts.throttling's subclasses call the accounts service).
        """

    def _account(self, request) -> dict | None:
        user = getattr(request, "user", None)
        if user is not None and getattr(user, "is_authenticated", False):
            return {"user_id": user.pk}
        tenant = _field(request, "tenant").strip().casefold()
        username = _field(request, "username").strip().casefold()
        if not tenant and "/" in username:  # Django admin's login names tenant staff `slug/username`
            tenant, username = username.split("/", 1)
        if not username:
            return None  # nothing names an account: the address limit applies alone
        return {"tenant": tenant, "username": username}

    def _key_for(self, account: dict, scope: str) -> str:
        if "user_id" in account:
            ident = f"user:{account['user_id']}"
        else:
            ident = "name:" + hash_token(f"{account['tenant']}|{account['username']}")[:32]
        return self.cache_format % {"scope": scope, "ident": ident}

    def _account_key(self, request):
        account = self._account(request)
        return None if account is None else self._key_for(account, self.scope)


class AccountGlobalRateThrottle(AccountRateThrottle):
    """Per account from every network together (scope `<throttle_scope>_account_global`): slower."""

    suffix = "_account_global"
    per_network = False
