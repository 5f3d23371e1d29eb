"""The run folder every command writes: `run.json` says what ran, how it stands, and with which config.

run.json          {"run": compare | sweep | finetune, "status": running | interrupted | completed, "config", "updated",
...}
experiment.yaml   the resolved experiment (defaults filled in, data paths absolute)
results.json      compare: every contender's measurements and the recommendation
solvers/ID/       compare: each contender's saved solver (what `kinds` load back)
sweep.json        sweep: the learning curve
lineage.json      finetune: the trained result and where it came from
report.html       compare: the self-contained report
mlflow.json       compare with MLflow tracking: the store, the runs and the registered model version
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from adaptlab.files import write_json


def mark(run_dir: Path, run: str, status: str, **fields) -> dict:
    """Write run.json (atomically), keeping what an earlier mark wrote unless `fields` replace it."""
    path = Path(run_dir) / "run.json"
    record = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {"started": now()}
    record |= {"run": run, "status": status, **fields, "updated": now()}
    write_json(path, record)
    return record


def now() -> str:
    """The time a run folder records: UTC, to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")
