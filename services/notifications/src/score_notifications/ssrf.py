"""Where a webhook may point: never at this machine, its network, or a cloud's metadata.

A webhook URL is checked when the subscription is made and again before every call, after
resolving its host: every address the name resolves to must be a public one, and the call is
then made to the address checked (with the name as `Host` and as the TLS server name), so
that a name that resolves elsewhere between the check and the call (DNS rebinding) cannot
send the call inward. A host named in `SCORE_WEBHOOK_ALLOWED_HOSTS` is exempt (a chamber's
receiver on the same private network, the tests' receiver on 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Collection
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

SCHEMES = ("http", "https")
RESOLVE_TIMEOUT = 5.0


class RefusedUrl(ValueError):
    """The URL may not be called; the message says why (and never quotes an address list)."""


@dataclass(frozen=True, slots=True)
class Target:
    """A URL checked, and the address to connect to for it."""

    url: str
    host: str
    """The host as the URL names it (what `Host` and the TLS server name say)."""
    address: str
    """The address checked: the one to connect to."""
    port: int
    allowed: bool
    """The host is in the allowed list: its addresses were not checked."""

    @property
    def endpoint(self) -> str:
        """What concurrency is bounded by: the host and port called."""
        return f"{self.host}:{self.port}"

    def connect_url(self) -> str:
        """The URL with the checked address in place of the host."""
        parts = urlsplit(self.url)
        address = f"[{self.address}]" if ":" in self.address else self.address
        netloc = f"{address}:{self.port}"
        return SplitResult(parts.scheme, netloc, parts.path or "/", parts.query, "").geturl()


def refusal_of(address: IPAddress) -> str | None:
    """Why `address` may not be called, or None if it is a public unicast address."""
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is not None:
            return refusal_of(mapped)
    checks = (
        ("loopback", address.is_loopback),
        ("unspecified", address.is_unspecified),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("not public", not address.is_global),
    )
    for name, applies in checks:
        if applies:
            return name
    return None


def parsed(url: str) -> SplitResult:
    """The URL's parts if it is an absolute http(s) URL with a host; RefusedUrl otherwise."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise RefusedUrl("is not a valid URL") from None
    if parts.scheme not in SCHEMES:
        raise RefusedUrl("must be an http or https URL")
    if not parts.hostname:
        raise RefusedUrl("names no host")
    if parts.username is not None or parts.password is not None:
        raise RefusedUrl("may not carry a user name or password")
    if port == 0:
        raise RefusedUrl("names port 0")
    return parts


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to (itself, if it is an address)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT):
            found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError, UnicodeError):
        raise RefusedUrl("names a host that does not resolve") from None
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in found:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise RefusedUrl("names a host that does not resolve")
    return addresses


async def checked(url: str, allowed_hosts: Collection[str]) -> Target:
    """The URL's target after resolving its host and checking every address; RefusedUrl if
    any address is not public and the host is not allowed."""
    parts = parsed(url)
    host = (parts.hostname or "").lower()
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = await resolve(host, port)
    allowed = host in allowed_hosts
    if not allowed:
        for address in addresses:
            if (why := refusal_of(address)) is not None:
                raise RefusedUrl(
                    f"resolves to a {why} address, which webhooks may not call "
                    "(unless the host is in SCORE_WEBHOOK_ALLOWED_HOSTS)"
                )
    return Target(url=url, host=host, address=str(addresses[0]), port=port, allowed=allowed)
