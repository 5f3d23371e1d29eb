"""Where adaptlab keeps user state: one folder, overridable by $ADAPTLAB_HOME."""

from __future__ import annotations

import os
from pathlib import Path


def adaptlab_home() -> Path:
    """The user-state folder: $ADAPTLAB_HOME, else ~/.cache/adaptlab."""
    env = os.environ.get("ADAPTLAB_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "adaptlab"
