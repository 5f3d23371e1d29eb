"""Registry: versions with verified files, promotion, crash consistency, concurrent writers, and compare's
registrations."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from adaptlab.errors import ConfigError
from adaptlab.registry import Registry, RegistryError

SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.fixture
def solver_folder(tmp_path) -> Path:
    folder = tmp_path / "solver"
    folder.mkdir()
    (folder / "solver.json").write_text(json.dumps({"strategy": "lora"}))
    (folder / "adapter_model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    (folder / "notes.txt").write_text("not an artifact type")
    return folder


def test_versions_are_numbered_verified_and_promoted(tmp_path, solver_folder):
    registry = Registry(tmp_path / "reg")
    v1 = registry.add_version("cards", "lora", solver_folder, {"metrics": {"accuracy": 0.8}})
    v2 = registry.add_version("cards", "few_shot", solver_folder, {}, extra={"pool.json": {"examples": []}})
    assert (v1.ref, v2.ref) == ("cards@v1", "cards@v2")
    assert set(v2.files) == {"solver.json", "adapter_model.safetensors", "pool.json"}  # notes.txt is not copied
    with pytest.raises(RegistryError, match="no promoted version"):
        registry.get("cards")
    registry.promote("cards@v1")
    assert registry.get("cards").ref == "cards@v1" and [v.promoted for v in registry.versions("cards")] == [True, False]
    registry.promote("cards@v2")
    assert registry.get("cards").ref == "cards@v2"
    for bad in ("../etc/passwd", "Cards", "cards@v0", "cards@latest", ""):
        with pytest.raises(ConfigError):
            registry.get(bad)
    with pytest.raises(RegistryError, match="no version cards@v9"):
        registry.get("cards@v9")


def test_missing_or_corrupted_files_are_found_before_use(tmp_path, solver_folder):
    registry = Registry(tmp_path / "reg")
    v1 = registry.add_version("cards", "lora", solver_folder, {})
    v2 = registry.add_version("cards", "lora", solver_folder, {})
    weights = v1.folder / "adapter_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    (v2.folder / "solver.json").unlink()
    problems, _ = registry.check()
    assert problems == [
        "cards@v1: adapter_model.safetensors does not match its sha256 (corrupted or changed)",
        f"cards@v2: solver.json is missing from {v2.folder}",
    ]
    with pytest.raises(RegistryError, match="cannot be used"):
        registry.promote("cards@v1")


CHILD = """
import os, signal, sys
from pathlib import Path
from adaptlab.registry import store

root, source, point, count = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

if point == "files":  # while the files are being written
    original, calls = store._fsync_and_hash, []
    def hash_then_die(path):
        calls.append(path)
        if len(calls) == 2:
            die()
        return original(path)
    store._fsync_and_hash = hash_then_die
elif point == "renamed":  # folder in place, no row yet
    store.Registry._insert_version = die
elif point == "transaction":  # inside BEGIN IMMEDIATE, the version number taken, nothing committed
    original_next = store.Registry._next_version
    store.Registry._next_version = lambda self, task: (original_next(self, task), die())
registry = store.Registry(root)
for _ in range(count):
    registry.add_version("cards", "lora", source, {"pid": os.getpid()})
"""


def _child(root, source, point, count=1):
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(root), str(source), point, str(count)],
        env={**os.environ, "PYTHONPATH": SRC},
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("point", ["files", "renamed", "transaction"])
def test_a_kill_during_a_write_leaves_the_registry_consistent(tmp_path, solver_folder, point):
    root = tmp_path / "reg"
    Registry(root).add_version("cards", "lora", solver_folder, {})
    proc = _child(root, solver_folder, point)
    proc.wait(timeout=120)
    assert proc.returncode == -9, proc.stderr.read()
    registry = Registry(root)
    problems, notes = registry.check()
    assert problems == [] and [v.ref for v in registry.versions()] == ["cards@v1"]
    assert len(notes) == 1 and "registry gc" in notes[0]  # the interrupted write's folder, reported, not used
    assert (
        registry.add_version("cards", "lora", solver_folder, {}).ref == "cards@v2"
    )  # and the database is not left locked


def test_eight_processes_writing_at_once_lose_nothing(tmp_path, solver_folder):
    root = tmp_path / "reg"
    Registry(root).close()
    procs = [_child(root, solver_folder, "none", 5) for _ in range(8)]
    for proc in procs:
        proc.wait(timeout=300)
        assert proc.returncode == 0, proc.stderr.read()
    registry = Registry(root)
    versions = registry.versions("cards")
    assert [v.version for v in versions] == list(range(1, 41))
    assert len({v.lineage["pid"] for v in versions}) == 8 and registry.check() == ([], [])


def test_compare_registers_every_solver_it_fits(card_experiment):
    from typer.testing import CliRunner

    from adaptlab.cli import app
    from adaptlab.registry import default_registry
    from adaptlab.runs.compare import run_compare

    results, _ = run_compare(card_experiment, card_experiment.parent / "run")
    registry = default_registry()
    versions = registry.versions("cards")
    assert [v.strategy for v in versions] == [s["name"] for s in results["strategies"]]
    assert [s["solver"]["registered_as"] for s in results["strategies"]] == [v.ref for v in versions]
    few_shot = next(v for v in versions if v.strategy == "few_shot")
    pool = json.loads((few_shot.folder / "pool.json").read_text())
    assert (
        len(pool["examples"]) == 12
        and few_shot.lineage["metrics"]["accuracy"]
        == next(s for s in results["strategies"] if s["name"] == "few_shot")["metrics"]["accuracy"]
    )
    lora = next(v for v in versions if v.strategy == "lora")
    assert "adapter_model.safetensors" in lora.files
    assert (
        lora.lineage["model"] == few_shot.lineage["model"] == results["model"]
        and lora.lineage["model"]["dtype"] == "fp32"
    )  # what was loaded, in each version
    assert all(
        v.lineage["model"] is None for v in versions if v.strategy in ("majority", "embed_classifier")
    )  # references run no LLM
    runner = CliRunner()
    assert runner.invoke(app, ["registry", "promote", lora.ref]).exit_code == 0
    shown = runner.invoke(app, ["registry", "show", "cards"])
    assert shown.exit_code == 0 and json.loads(shown.output)["ref"] == lora.ref
    listed = runner.invoke(app, ["registry", "list"])
    assert f"* {lora.ref}" in listed.output
    assert runner.invoke(app, ["registry", "check"]).exit_code == 0


def test_registry_list_shows_each_versions_headline_whatever_shape_its_metrics_were_recorded_in(solver_folder):
    from typer.testing import CliRunner

    from adaptlab.cli import app
    from adaptlab.registry import default_registry

    task = {"name": "cards", "kind": "classify", "metric": "accuracy", "labels": ["a", "b"]}
    registry = default_registry()
    registry.add_run("r1", "compare", None, {}, None, "completed")
    compare_shape = {
        "id": "few_shot",
        "metrics": {"macro_f1": 0.7, "accuracy": 0.8125},
        "ci": {"accuracy": [0.7, 0.9]},
    }  # runs/compare.py `register`
    finetune_shape = {
        "task": task,
        "metrics": {
            "test": {"macro_f1": 0.6, "accuracy": 0.75},
            "test_ci95": {"accuracy": [0.6, 0.85]},
            "best_dev_score": 0.7,
        },
    }  # runs/finetune.py's lineage
    valued = {"metrics": {"accuracy": {"value": 0.66, "ci": [0.5, 0.8]}}}
    for strategy, lineage in (
        ("few_shot", compare_shape),
        ("lora", finetune_shape),
        ("lora", valued),
        ("zero_shot", {"metrics": {}}),
    ):
        registry.add_version(
            "cards", strategy, solver_folder, lineage, run_id="r1", extra={"task.json": task}, contender=strategy
        )
    registry.close()
    runner = CliRunner()
    listed = runner.invoke(app, ["registry", "list"])
    assert listed.exit_code == 0, listed.output
    rows = {line.split()[1]: line for line in listed.output.splitlines() if "cards@v" in line}
    assert list(rows) == ["cards@v1", "cards@v2", "cards@v3", "cards@v4"]
    assert (
        "accuracy 0.812" in rows["cards@v1"] and "macro_f1" not in rows["cards@v1"]
    )  # the task's headline, not the first key
    assert "accuracy 0.750" in rows["cards@v2"] and "accuracy 0.660" in rows["cards@v3"]
    assert "0." not in rows["cards@v4"].split("r1")[0]  # no metrics: an empty cell, no error
    shown = runner.invoke(app, ["registry", "show", "cards@v2"])
    assert shown.exit_code == 0 and json.loads(shown.output)["lineage"]["metrics"] == finetune_shape["metrics"]


def test_rm_deletes_files_keeps_the_number_and_refuses_the_promoted_version(tmp_path, solver_folder):
    registry = Registry(tmp_path / "reg")
    v1, v2, _ = (registry.add_version("cards", "lora", solver_folder, {}) for _ in range(3))
    registry.promote("cards@v3")
    with pytest.raises(RegistryError, match="promoted version of 'cards'.*promote another first"):
        registry.remove("cards@v3")
    with pytest.raises(RegistryError, match="give task@vN"):
        registry.remove("cards")
    registry.remove("cards@v2")
    assert (
        not v2.folder.exists()
        and v1.folder.exists()
        and [v.ref for v in registry.versions("cards")] == ["cards@v1", "cards@v3"]
    )
    with pytest.raises(RegistryError, match="was removed"):
        registry.get("cards@v2")
    registry.remove("cards@v1")
    assert (
        registry.add_version("cards", "lora", solver_folder, {}).ref == "cards@v4"
    )  # a removed number is never given again
    assert registry.check() == ([], [])


def test_gc_removes_versions_no_alias_or_run_refers_to_and_leftovers(tmp_path, solver_folder):
    from typer.testing import CliRunner

    from adaptlab.cli import app
    from adaptlab.registry import default_registry

    registry = default_registry()
    kept_run, gone_run = tmp_path / "run-kept", tmp_path / "run-gone"
    for run in (kept_run, gone_run):
        run.mkdir()
        registry.add_run(run.name, "compare", str(run), {}, None, "completed")
    in_kept = registry.add_version("cards", "lora", solver_folder, {}, run_id=kept_run.name)
    in_gone = registry.add_version("cards", "few_shot", solver_folder, {}, run_id=gone_run.name)
    promoted = registry.add_version("cards", "lora", solver_folder, {}, run_id=gone_run.name)
    registry.promote(promoted.ref)
    orphan = registry.add_version("cards", "lora", solver_folder, {})  # registered by no run
    leftover, writing = registry.artifacts / ".tmp-interrupted", registry.artifacts / ".tmp-in-progress"
    leftover.mkdir()
    writing.mkdir()
    os.utime(
        leftover, (0, 0)
    )  # untouched for long: an interrupted write; `writing` is young, a write that may be in progress
    gone_run.rmdir()
    runner = CliRunner()
    dry = runner.invoke(app, ["registry", "gc", "--dry-run"])
    assert (
        dry.exit_code == 0
        and "would remove cards@v2" in dry.output
        and "would remove cards@v4" in dry.output
        and leftover.exists()
    )
    done = runner.invoke(app, ["registry", "gc"])
    assert done.exit_code == 0, done.output
    assert [v.ref for v in default_registry().versions("cards")] == [
        in_kept.ref,
        promoted.ref,
    ]  # kept: its run is there; promoted
    assert not in_gone.folder.exists() and not orphan.folder.exists() and not leftover.exists() and writing.exists()
    removed = runner.invoke(app, ["registry", "rm", in_kept.ref])
    assert removed.exit_code == 0 and f"removed {in_kept.ref}" in removed.output and not in_kept.folder.exists()
