"""The download policy: the one place where the offline backend fetches an image URL.

A request may name an image by URL; the server then downloads it, as the real service does. Because the server
runs on a learner's computer, a URL must not become a way into that computer or its network:

* ``http`` and ``https`` only, at every hop; at most ``MAX_REDIRECTS`` redirects, each checked again;
* every host name is resolved first and each of its addresses must be public (not loopback, private,
  link-local, ``0.0.0.0``, multicast or reserved; decimal and hex spellings resolve to what they mean), and the
  connection goes to the address that was checked (no second DNS answer can swap it);
* the local exceptions are the server's own ``/images/`` folder, read from disk (its URLs are what the URL
  lesson sends offline), and the public copies of the course images (``images/public_copies.json``: what
  ``course_image_url`` sends a real provider), answered from the local file each was made from, like a cache,
  so the course's own server can stand in for a remote provider with no internet;
  ``trusted_origins`` (tests only) names other ``host:port`` origins that may be local;
* ``VISION_OFFLINE_DOWNLOADS=off`` refuses every other download, redirects included (the test session sets it);
* a total deadline per download and per request, a per-read timeout, and a byte cap per image and per request.

Every refusal is the API's 400 ``invalid_image_url`` (``Error while downloading URL.``, or ``Timeout while
downloading URL.``) with ``x-should-retry: false``.

>>> safe_image_path(IMAGES_DIR, "../helpers/errors.py") is None
True
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helpers import course_images, images
from helpers.local import IMAGES_DIR, is_loopback
from helpers.offline.protocol import ApiError

__all__ = ["IMAGES_DIR", "Budget", "DownloadPolicy", "fetch_url", "safe_image_path"]

DEFAULT_DOWNLOAD_TIMEOUT = 5.0   # seconds per socket operation (connect, each read)
DOWNLOAD_DEADLINE = 15.0         # seconds for one image, redirects included
REQUEST_DEADLINE = 30.0          # seconds for all the downloads of one request
DNS_TIMEOUT = 2.0                # seconds allowed for resolving a host name
MAX_REDIRECTS = 5
_REDIRECTS = (301, 302, 303, 307, 308)
_NO_RETRY = {"x-should-retry": "false"}


class Cancelled(Exception):
    """The client went away: stop working on its request."""


@dataclass
class DownloadPolicy:
    """What one server may fetch: its own origins (for ``/images/``), timeouts, and trusted test origins."""

    images_dir: Path = IMAGES_DIR
    own_origins: set[tuple[str, int]] = field(default_factory=set)
    timeout: float = DEFAULT_DOWNLOAD_TIMEOUT
    deadline: float = DOWNLOAD_DEADLINE
    trusted_origins: frozenset[str] = frozenset()
    #: False while the server's settings say ``VISION_OFFLINE_DOWNLOADS=off`` (asked on every request).
    downloads_allowed: Callable[[], bool] = lambda: True


@dataclass
class Budget:
    """What one request may still spend on downloads: a monotonic deadline and a number of bytes."""

    deadline: float
    bytes_left: int
    cancelled: Callable[[], bool] = lambda: False

    @classmethod
    def for_request(cls, max_bytes: int, cancelled: Callable[[], bool] = lambda: False) -> Budget:
        return cls(time.monotonic() + REQUEST_DEADLINE, max_bytes, cancelled)

    def check(self) -> None:
        if self.cancelled():
            raise Cancelled()


def _failed(url: str, why: str = "", timeout: bool = False) -> ApiError:
    what = "Timeout" if timeout else "Error"
    return ApiError(400, f"{what} while downloading {url}.{why}", param="url", code="invalid_image_url",
                    headers=_NO_RETRY)


_NAT64 = ipaddress.ip_network("64:ff9b::/96")          # RFC 6052: the last 32 bits are an IPv4 address
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")   # RFC 8215: local-use translation, never public
_IETF_PROTOCOL = ipaddress.ip_network("192.0.0.0/24")   # RFC 6890: IETF protocol assignments, no image servers


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries: IPv4-mapped (``::ffff:a.b.c.d``), NAT64 (``64:ff9b::/96``) or
    6to4 (``2002::/16``); None for any other.

    >>> str(embedded_ipv4(ipaddress.IPv6Address("64:ff9b::a00:1"))), str(embedded_ipv4(ipaddress.IPv6Address("2002:a00:1::1")))
    ('10.0.0.1', '10.0.0.1')
    """
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def public_address(address: str) -> bool:
    """True for an address on the public internet: ``ipaddress``'s registry of special-purpose blocks
    (``is_global``), not multicast, not in ``192.0.0.0/24``; an IPv6 address that carries an IPv4 one (mapped,
    NAT64, 6to4: :func:`embedded_ipv4`) is judged by that IPv4 address, so ``64:ff9b::a00:1`` is 10.0.0.1.

    >>> public_address("8.8.8.8"), public_address("10.0.0.1"), public_address("0.0.0.0"), public_address("::ffff:127.0.0.1")
    (True, False, False, False)
    >>> public_address("64:ff9b::7f00:1"), public_address("2002:a00:1::1"), public_address("192.0.0.9")
    (False, False, False)
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.version == 6:
        if ip in _NAT64_LOCAL:
            return False
        ip = embedded_ipv4(ip) or ip
    if ip.version == 4 and ip in _IETF_PROTOCOL:
        return False
    return ip.is_global and not ip.is_multicast


def _resolve(host: str, port: int, timeout: float) -> list[str]:
    """The addresses of ``host``, resolved in a daemon thread so a dead DNS server cannot stall the request."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except BaseException as err:  # noqa: BLE001 - handed back to the caller below
            outcome["error"] = err

    worker = threading.Thread(target=run, name="offline-dns", daemon=True)
    worker.start()
    worker.join(timeout)
    if "error" in outcome:
        raise outcome["error"]
    if "value" not in outcome:
        raise TimeoutError(f"resolving {host} took longer than {timeout} s")
    return list(dict.fromkeys(str(info[4][0]) for info in outcome["value"]))


def safe_image_path(images_dir: Path, name: str) -> Path | None:
    """The file ``name`` inside ``images_dir``, or None if it is missing or would escape the folder."""
    if not name or "\x00" in name or "\\" in name or len(name) > 1024:
        return None
    root = images_dir.resolve()
    try:
        path = (root / name).resolve()
        if not path.is_relative_to(root) or path == root or not path.is_file():
            return None
    except (OSError, RuntimeError, ValueError):
        return None
    return path


class _Pinned(http.client.HTTPConnection):
    """An HTTP connection to a host name, made to the one address that the policy checked."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = self.held = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedTLS(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        context: ssl.SSLContext = self._context  # type: ignore[attr-defined]  # set by HTTPSConnection.__init__
        self.sock = self.held = context.wrap_socket(sock, server_hostname=self.host)


def _read_own_image(parts: urllib.parse.SplitResult, policy: DownloadPolicy, url: str) -> bytes | None:
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if (parts.hostname, port) not in policy.own_origins or not parts.path.startswith("/images/"):
        return None
    path = safe_image_path(policy.images_dir, urllib.parse.unquote(parts.path[len("/images/"):]))
    if path is None or path.stat().st_size > images.MAX_IMAGE_BYTES:
        raise _failed(url)
    return path.read_bytes()


def _hop(current: str, url: str, policy: DownloadPolicy, budget: Budget, deadline: float,
         limit: int) -> tuple[bytes | None, str | None]:
    """One request of a download: ``(body, None)``, or ``(None, next URL)`` for a redirect."""
    try:
        parts = urllib.parse.urlsplit(current)
        scheme, host = parts.scheme.lower(), parts.hostname
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:                              # "http://[::1/x.png", port 99999...
        raise _failed(url) from None
    if scheme not in ("http", "https") or not host or len(host) > 253:
        raise _failed(url)
    own = _read_own_image(parts, policy, url)
    if own is None and (copy := course_images.local_copy_of(current)) is not None:
        own = copy.read_bytes()                     # a course image's public copy: the file it was made from
    if own is not None:
        return own, None
    trusted = f"{host}:{port}" in policy.trusted_origins
    if not policy.downloads_allowed() and not trusted:
        # The test session switches downloads off, so the hot-link lesson stores the same error everywhere.
        raise _failed(url)
    try:
        addresses = _resolve(host, port, max(0.05, min(DNS_TIMEOUT, deadline - time.monotonic())))
    except (OSError, ValueError):                   # UnicodeError (a label over 63 characters) is a ValueError
        raise _failed(url) from None
    if not trusted and (is_loopback(host) or not all(public_address(a) for a in addresses)):
        raise _failed(url, " The offline backend downloads images only from public internet addresses; send a "
                           "local or private image as a data URL instead.")
    budget.check()
    connection_type = _PinnedTLS if scheme == "https" else _Pinned
    connection = connection_type(host, port, addresses[0], max(0.05, min(policy.timeout, deadline - time.monotonic())))
    try:
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection.request("GET", target, headers={"User-Agent": "vision-course-offline/1.0", "Accept": "image/*"})
        response = connection.getresponse()
        if response.status in _REDIRECTS and response.getheader("Location"):
            return None, urllib.parse.urljoin(current, response.getheader("Location", ""))
        if response.status != 200:
            raise _failed(url)
        pieces, total = [], 0
        while total <= limit:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("download deadline")
            budget.check()
            connection.held.settimeout(min(policy.timeout, left))   # .sock is gone once the answer says "close"
            piece = response.read1(min(65536, limit + 1 - total))
            if not piece:
                break
            pieces.append(piece)
            total += len(piece)
        return b"".join(pieces), None
    finally:
        connection.close()


def fetch_url(url: str, policy: DownloadPolicy, budget: Budget) -> bytes:
    """The bytes behind an http(s) image URL under the policy (at most the per-image or remaining request cap,
    plus one byte so that the caller can tell "too large")."""
    deadline = min(time.monotonic() + policy.deadline, budget.deadline)
    limit = min(images.MAX_IMAGE_BYTES, max(budget.bytes_left, 0))
    current = url.strip()
    try:
        for _ in range(MAX_REDIRECTS + 1):
            budget.check()
            data, current = _hop(current, url, policy, budget, deadline, limit)  # type: ignore[assignment]
            if data is not None:
                return data
    except TimeoutError:
        raise _failed(url, timeout=True) from None
    except (OSError, ValueError, http.client.HTTPException):
        raise _failed(url) from None
    raise _failed(url)                              # too many redirects
