"""Attachment bytes on disk, named by their SHA-256 (so the same photo sent
twice is stored once, and a name can never point at other bytes)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


class MediaStore:
    """Content-addressed files under `root`: `ab/abcdef…` for SHA-256 `abcdef…`."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / sha256

    def put(self, data: bytes) -> str:
        """Store `data` and return its SHA-256. The file appears whole or not at
        all (written aside, fsynced, then renamed), so a crash never leaves a
        truncated photo under a valid name."""
        digest = hashlib.sha256(data).hexdigest()
        target = self.path(digest)
        if target.exists():
            return digest
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return digest

    def read(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()
