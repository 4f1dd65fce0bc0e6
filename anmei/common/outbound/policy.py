"""What a tenant-configured URL may reach: address and URL checks, error categories, scrubbing.

The rules are listed in the package docstring (anmei/common/outbound/__init__.py).
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings

logger = logging.getLogger("anmei.outbound")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class OutboundError(Exception):
    """A refused or failed outbound call; `category` is the only thing safe to show a tenant."""

    def __init__(self, category: str, detail: str = ""):
        super().__init__(category)
        self.category = category
        self.detail = detail  # for our own logs only (scrubbed of bodies)


class BlockedDestination(OutboundError):
    """Not an OSError on purpose: urllib3 and requests let it through unwrapped and unretried."""

    def __init__(self, detail: str = ""):
        super().__init__("blocked_destination", detail)


def _allow_list() -> tuple[set[str], list[ipaddress.IPv4Network | ipaddress.IPv6Network]]:
    hosts: set[str] = set()
    nets = []
    for item in settings.OUTBOUND_ALLOWED_PRIVATE_HOSTS:
        item = item.strip().lower()
        if not item:
            continue
        try:
            nets.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            hosts.add(item)
    return hosts, nets


# IPv6 prefixes that carry an IPv4 address in their low 32 bits: judged by that address. RFC 4291's
# IPv4-mapped, RFC 2765's IPv4-translated (SIIT) and RFC 6052's well-known NAT64 prefix.
_EMBEDDING_LOW_32 = tuple(ipaddress.ip_network(n) for n in ("::ffff:0:0/96", "::ffff:0:0:0/96", "64:ff9b::/96"))
# Refused whatever they carry: deprecated IPv4-compatible (::a.b.c.d), local-use NAT64 (RFC 8215,
# where the IPv4 sits at an operator-chosen offset) and Teredo (the client address is obfuscated).
_EMBEDDING_REFUSED = tuple(ipaddress.ip_network(n) for n in ("::/96", "64:ff9b:1::/48", "2001::/32"))


def _effective(ip: IPAddress) -> IPAddress | None:
    """The address a connection to `ip` really reaches: the IPv4 inside an embedding IPv6 form.

    None means "refuse": a form whose embedded destination cannot be judged (see the tables above).
    6to4 (2002::/16) carries its IPv4 in bits 16-47.
    """
    if not isinstance(ip, ipaddress.IPv6Address):
        return ip
    ip = ipaddress.IPv6Address(int(ip))  # drop a %scope: it does not change the destination's class
    if any(ip in net for net in _EMBEDDING_LOW_32):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    if any(ip in net for net in _EMBEDDING_REFUSED):
        return None
    return ip


def _public(ip: IPAddress) -> bool:
    return ip.is_global and not ip.is_multicast


def check_address(host: str, ip: IPAddress) -> None:
    """Raise BlockedDestination unless `ip` (resolved for `host`) may be called.

    Every IPv4-embedding IPv6 form is judged by the IPv4 it carries (or refused), for the allow
    list as for the public rule: `[::ffff:127.0.0.1]` is 127.0.0.1.
    """
    target = _effective(ip)
    if target is None:
        raise BlockedDestination(f"{host} is an IPv6 form that embeds an address we cannot judge")
    hosts, nets = _allow_list()
    if host.lower().rstrip(".") in hosts or any(target in net for net in nets) or _public(target):
        return
    raise BlockedDestination(f"{host} resolves to a non-public address")


def resolve(host: str, port: int) -> list[tuple[int, IPAddress]]:
    """(family, address) pairs for host, every one checked; raises BlockedDestination or OutboundError."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise OutboundError("dns_error", f"cannot resolve {host}") from None
    return _checked(host, infos)


def _checked(host: str, infos) -> list[tuple[int, IPAddress]]:
    found: list[tuple[int, IPAddress]] = []
    for family, _type, _proto, _name, sockaddr in infos:
        ip = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])
        check_address(host, ip)  # one bad address refuses the host: no "try the next one"
        if (family, ip) not in found:
            found.append((family, ip))
    if not found:
        raise OutboundError("dns_error", f"no address for {host}")
    return found


# A last label that is a number makes a host an IPv4 address to URL parsers and resolvers
# (WHATWG URL, inet_aton): `127.1`, `2130706433`, `0x7f000001`, `0177.0.0.1` all reach 127.0.0.1.
_NUMERIC_LABEL = re.compile(r"(?i)^(0x[0-9a-f]*|[0-9]+)$")
_LOCAL_NAMES = ("localhost", "localhost.localdomain")


def _numeric_host_error(host: str) -> str | None:
    """Refuse an IPv4 host not written as four plain decimal numbers (no guessing what it means)."""
    name = host.rstrip(".")
    if ":" in name or not _NUMERIC_LABEL.match(name.rsplit(".", 1)[-1]):
        return None
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        return "write an IPv4 host as four decimal numbers (a.b.c.d)"
    return None


def check_url(url: str) -> None:
    """Refuse a URL by its shape (scheme, userinfo, host); the address is checked at connect time."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise OutboundError("invalid_url", "malformed URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OutboundError("invalid_url", "only http(s) URLs with a host are allowed")
    if parts.username is not None or parts.password is not None:
        raise OutboundError("invalid_url", "credentials in the URL are not allowed")
    error = _numeric_host_error(parts.hostname)
    if error:
        raise OutboundError("invalid_url", error)


def config_error(url: str, *, base: bool = True) -> str | None:
    """Why a tenant may not save this URL (None: fine): the one check for every tenant-supplied URL.

    Every serializer field and admin form that takes a tenant URL goes through here
    (`anmei.common.api.TenantURLField`, `anmei.common.admin.TenantSettingsForm`). `base` URLs (an
    agent's API root, a bot's callback root) get paths appended, so a `?` or `#` in them would turn
    our path into a query or a fragment and aim the call elsewhere on that host: both are refused.
    Checks the shape and hosts that are addresses (or `localhost`) without a DNS lookup: names are
    resolved, and refused if private, when a call is made.
    """
    if not url:
        return None
    try:
        check_url(url)
    except OutboundError as exc:
        return exc.detail
    if "#" in url or (base and "?" in url):
        return "a base URL takes no query (?) or fragment (#)" if base else "a URL takes no fragment (#)"
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        local = host in _LOCAL_NAMES or host.endswith(".localhost")  # RFC 6761: always loopback
        ip = ipaddress.ip_address("127.0.0.1") if local else None
    if ip is not None:
        try:
            check_address(host, ip)
        except BlockedDestination:
            return "this address is not reachable from the platform (private, loopback or link-local)"
    return None


def join(base_url: str, path: str) -> str:
    """`base_url` + `path` for a call: a stored base's query or fragment never swallows the path.

    Saving refuses them (`config_error`); this keeps a row saved before that rule harmless.
    """
    parts = urlsplit(base_url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/") + path, "", ""))


def preflight(url: str) -> None:
    """check_url plus resolving and checking the host now: fail fast before slower setup work.

    Not a replacement for the connect-time check (DNS may answer differently by then).
    """
    check_url(url)
    parts = urlsplit(url)
    resolve(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))


_SECRETS = re.compile(r"(?i)(bearer\s+|sk-|ak_|anm_|bot_|mcp_key_|api[_-]?key[\"']?\s*[:=]\s*[\"']?)[\w\-.~+/=]+")
_EMAILS = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
_LONG_NUMBERS = re.compile(r"\+?\d[\d -]{6,}\d")
_ADDRESSES = re.compile(r"\b\d{1,3}(\.\d{1,3}){3}(:\d+)?\b")


def scrub(text: str, limit: int = 300) -> str:
    """An upstream body fit for our own logs: truncated, credentials, emails, phones and IPs masked."""
    text = (text or "")[:limit]
    text = _SECRETS.sub(lambda m: m.group(1) + "***", text)
    text = _EMAILS.sub("***@***", text)
    text = _ADDRESSES.sub("*.*.*.*", text)
    return _LONG_NUMBERS.sub("***", text)


# --- requests (sync) ------------------------------------------------------------------------------
