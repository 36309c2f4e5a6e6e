"""Putting a finished local folder in place whole: readers see the old folder or the new one, never a mix.

Used for model versions and the tiny base model, which are folders of several files.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import uuid
from pathlib import Path


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two directories (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def replace_folder(new: Path, target: Path) -> Path:
    """Move `new` (a sibling of `target`, on the same filesystem) to `target`, replacing what is there."""
    new, target = Path(new), Path(target)
    if not target.exists():
        os.rename(new, target)
    elif _exchange(new, target):
        shutil.rmtree(new)  # now holds the old folder
    else:  # no atomic exchange here: move the old one aside, the new one in
        old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
        os.rename(target, old)
        os.rename(new, target)
        shutil.rmtree(old, ignore_errors=True)
    return target
