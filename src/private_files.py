"""Files only the service's own user may read: the generated signing secret and the embedded
SQLite database (whose -wal and -shm files SQLite creates with the database's permissions)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

PRIVATE_FILE_MODE = 0o600
PRIVATE_FOLDER_MODE = 0o700


def create_private_file(path: Path, content: bytes = b"") -> bool:
    """Create `path` with mode 0600 from its first instant (never wider, then narrowed), its
    folder 0700 if new. False, and nothing written, when it already exists."""
    path.parent.mkdir(mode=PRIVATE_FOLDER_MODE, parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        return False
    with os.fdopen(descriptor, "wb") as file:
        file.write(content)
    # The umask can only narrow the mode; this makes sure it is exactly 0600.
    with contextlib.suppress(OSError):
        path.chmod(PRIVATE_FILE_MODE)
    return True
