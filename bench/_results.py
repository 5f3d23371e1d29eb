"""What every benchmark ends with: its JSON line, written to its own results file and printed last."""

from __future__ import annotations

import json
from pathlib import Path


def write_result(out: str | Path, result: dict) -> None:
    """Write `result` as one JSON line to `out` (by the script itself: a shell redirect once clobbered one), then print
    it."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result) + "\n")
    print(json.dumps(result))
