"""The one way to call a URL a tenant configured (bot callbacks, agent base URLs, push gateways).

SSRF rules, enforced where the socket is opened so DNS tricks cannot slip past a check made earlier:
- only `http` and `https`; no userinfo in the URL; environment proxies are ignored;
- the host name is resolved here and every address must be public (not loopback, private,
  link-local, CGNAT, multicast, reserved, unspecified); an IPv6 form that embeds an IPv4 (mapped,
  translated, NAT64, 6to4) is judged by that IPv4, and forms that cannot be judged (IPv4-compatible,
  local-use NAT64, Teredo) are refused; the socket then connects to exactly the address that was
  checked (no second lookup to rebind);
- an IPv4 host must be four decimal numbers (`127.1`, `0x7f000001` are refused);
- redirects are never followed (a 3xx is just a failed answer);
- `settings.OUTBOUND_ALLOWED_PRIVATE_HOSTS` (host names or CIDRs) lets an on-premise deployment and
  the test fakes on 127.0.0.1 through;
- failures are reduced to a category (`OutboundError.category`): what tenants see never carries an
  upstream body, a port-specific connection error or an internal address.

`session()` is a `requests.Session` for sync callers; `async_client(**kw)` an `httpx2.AsyncClient`.

The package: `policy` (what may be called: the address and URL checks, error categories, scrubbing),
`sync` (the guarded `requests` session) and `clients` (guarded `httpx2` clients). Callers import
from `anmei.common.outbound`.
"""

from anmei.common.outbound.clients import async_category, async_client, sync_client
from anmei.common.outbound.policy import (
    BlockedDestination,
    IPAddress,
    OutboundError,
    check_address,
    check_url,
    config_error,
    join,
    preflight,
    resolve,
    scrub,
)
from anmei.common.outbound.sync import GuardedSession, categorize, post, session

__all__ = [
    "BlockedDestination",
    "GuardedSession",
    "IPAddress",
    "OutboundError",
    "async_category",
    "async_client",
    "categorize",
    "check_address",
    "check_url",
    "config_error",
    "join",
    "post",
    "preflight",
    "resolve",
    "scrub",
    "session",
    "sync_client",
]
