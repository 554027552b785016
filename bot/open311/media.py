"""Fetching a report's `media_url` photo: bounded in size, type and time.

Runs in a worker thread (the workflow that calls it is synchronous), with a
synchronous httpx client. The answer is a photo or why not; a failure never
refuses the report (`workflows.sources` keeps the call and notes it).
"""

from __future__ import annotations

import logging
import time

import httpx

from workflows.errors import InvalidInput
from workflows.photos import Photo, check_photo
from workflows.sources import (
    MEDIA_NOT_AN_IMAGE,
    MEDIA_TOO_LARGE,
    MEDIA_UNREACHABLE,
    FetchedMedia,
)

log = logging.getLogger(__name__)

MAX_REDIRECTS = 3


class MediaFetcher:
    """GET an image of at most `max_bytes` within `timeout` seconds in all."""

    def __init__(self, max_bytes: int, timeout: float,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.transport = transport

    def __call__(self, url: str) -> FetchedMedia:
        deadline = time.monotonic() + self.timeout
        try:
            with httpx.Client(timeout=httpx.Timeout(self.timeout), follow_redirects=True,
                              max_redirects=MAX_REDIRECTS, transport=self.transport,
                              headers={"Accept": "image/*"}) as client, \
                    client.stream("GET", url) as response:
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
        except (httpx.HTTPError, ValueError) as failure:
            log.info("media_url %s: %s", url, failure)
            return FetchedMedia(error=MEDIA_UNREACHABLE)
        data = b"".join(chunks)
        try:
            check_photo(data, self.max_bytes)  # the bytes decide, not the header
        except InvalidInput:
            return FetchedMedia(error=MEDIA_NOT_AN_IMAGE)
        return FetchedMedia(photo=Photo(data))
