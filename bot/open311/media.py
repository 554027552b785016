"""Fetching a report's `media_url` photo: bounded in size, type and time.

Runs in a worker thread (the workflow that calls it is synchronous), with a
synchronous httpx client. The answer is a photo or why not; a failure never
refuses the report (`workflows.sources` keeps the call and notes it).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import time
from urllib.parse import urljoin, urlsplit

import httpx

from workflows.errors import InvalidInput
from workflows.photos import Photo, check_photo
from workflows.sources import (
    MEDIA_FORBIDDEN_ADDRESS,
    MEDIA_NOT_AN_IMAGE,
    MEDIA_TOO_LARGE,
    MEDIA_UNREACHABLE,
    FetchedMedia,
)

log = logging.getLogger(__name__)

MAX_REDIRECTS = 3


def public_host(url: str) -> bool:
    """Whether every address `url`'s host resolves to is a public one — not
    loopback, private, link-local (cloud metadata) or reserved — so a key
    cannot make youhu fetch from its own network. (The name is resolved
    again when connecting; a host that answers differently the second time
    is the residual risk, which is why keys go only to trusted systems.)"""
    host = urlsplit(url).hostname
    if not host:
        return False
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return False
    addresses = {info[4][0] for info in infos}
    return bool(addresses) and all(ipaddress.ip_address(str(a).split("%")[0]).is_global
                                   for a in addresses)


class MediaFetcher:
    """GET an image of at most `max_bytes` within `timeout` seconds in all,
    from public addresses only unless `allow_private` (for a camera system
    on the district's own network: set `open311.media_private_addresses`)."""

    def __init__(self, max_bytes: int, timeout: float,
                 transport: httpx.BaseTransport | None = None,
                 allow_private: bool = False) -> None:
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.transport = transport
        self.allow_private = allow_private

    def __call__(self, url: str) -> FetchedMedia:
        deadline = time.monotonic() + self.timeout
        try:
            with httpx.Client(timeout=httpx.Timeout(self.timeout), follow_redirects=False,
                              transport=self.transport,
                              headers={"Accept": "image/*"}) as client:
                # Redirects are followed by hand, so each hop's host is checked.
                for _hop in range(MAX_REDIRECTS + 1):
                    if not self.allow_private and not public_host(url):
                        log.info("media_url %s: not a public address", url)
                        return FetchedMedia(error=MEDIA_FORBIDDEN_ADDRESS)
                    with client.stream("GET", url) as response:
                        if response.is_redirect and "location" in response.headers:
                            url = urljoin(url, response.headers["location"])
                            if not url.lower().startswith(("http://", "https://")):
                                return FetchedMedia(error=MEDIA_UNREACHABLE)
                            continue
                        return self._read(url, response, deadline)
                return FetchedMedia(error=MEDIA_UNREACHABLE)  # too many redirects
        except (httpx.HTTPError, ValueError) as failure:
            log.info("media_url %s: %s", url, failure)
            return FetchedMedia(error=MEDIA_UNREACHABLE)

    def _read(self, url: str, response: httpx.Response, deadline: float) -> FetchedMedia:
        if response.status_code != 200:
            log.info("media_url %s: HTTP %s", url, response.status_code)
            return FetchedMedia(error=MEDIA_UNREACHABLE)
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            return FetchedMedia(error=MEDIA_TOO_LARGE)
        kind = response.headers.get("content-type", "image/").split(";")[0].strip()
        if not kind.startswith("image/") and kind != "application/octet-stream":
            return FetchedMedia(error=MEDIA_NOT_AN_IMAGE)
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > self.max_bytes:
                return FetchedMedia(error=MEDIA_TOO_LARGE)
            if time.monotonic() > deadline:  # a slow drip: httpx times each read only
                return FetchedMedia(error=MEDIA_UNREACHABLE)
            chunks.append(chunk)
        data = b"".join(chunks)
        try:
            check_photo(data, self.max_bytes)  # the bytes decide, not the header
        except InvalidInput:
            return FetchedMedia(error=MEDIA_NOT_AN_IMAGE)
        return FetchedMedia(photo=Photo(data))
