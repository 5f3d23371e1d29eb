"""Run folders and exports: unique run folders, no writing into someone else's folder, exports that read only their own
run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from adaptlab.errors import AdaptlabError, ConfigError
from adaptlab.files import atomic_folder
from adaptlab.finetune.export import ADAPTER_FILES, export
from adaptlab.home import adaptlab_home


class Stop(Exception):
    """Raised in place of loading the base model: these tests only need the run folder."""


@pytest.fixture
def no_model(monkeypatch):
    import adaptlab.models

    def stop(*args, **kwargs):
        raise Stop

    monkeypatch.setattr(adaptlab.models, "load_base_model", stop)


def test_runs_started_in_the_same_second_get_their_own_folders(card_experiment, no_model):
    from adaptlab.runs.compare import run_compare
    from adaptlab.runs.finetune import run_finetune

    for start in (run_compare, run_compare, run_finetune, run_finetune):
        with pytest.raises(Stop):
            start(card_experiment)
    runs = sorted((adaptlab_home() / "runs").iterdir())
    assert len(runs) == 4 and all(
        sorted(p.name for p in run.iterdir()) in (["experiment.yaml"], ["experiment.yaml", "run.json"]) for run in runs
    )
    names = [
        re.fullmatch(r"[0-9]{8}-[0-9]{6}-cards(-lora)?-[0-9a-f]{6}", run.name) for run in runs
    ]  # <UTC time>-<task>[-<strategy>]-<6 hex>
    assert all(names) and sum(bool(n.group(1)) for n in names) == 2


def test_compare_refuses_an_output_folder_that_is_not_empty(card_experiment, tmp_path, no_model):
    from adaptlab.runs.compare import run_compare

    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "results.json").write_text("{}", encoding="utf-8")
    with pytest.raises(ConfigError, match="taken already exists and is not an empty folder; choose another --out"):
        run_compare(card_experiment, taken)
    assert [p.name for p in taken.iterdir()] == ["results.json"] and (taken / "results.json").read_text() == "{}"
    (tmp_path / "a-file").write_text("x", encoding="utf-8")
    with pytest.raises(ConfigError, match="not an empty folder"):
        run_compare(card_experiment, tmp_path / "a-file")
    (tmp_path / "empty").mkdir()
    with pytest.raises(Stop):  # an empty folder is fine: the run gets as far as loading the model
        run_compare(card_experiment, tmp_path / "empty")
    assert (tmp_path / "empty" / "experiment.yaml").is_file()
    record = json.loads((tmp_path / "empty" / "run.json").read_text(encoding="utf-8"))
    assert record["status"] == "failed" and record["error"].startswith("Stop")  # a run that stops is not left "running"
    from adaptlab.registry import default_registry

    registry = default_registry()
    assert registry.db.execute("SELECT status FROM runs WHERE id = ?", ("empty",)).fetchone()[0] == "failed"
    registry.close()


def _run_folder(root: Path, output: str) -> Path:
    """A run folder as `adaptlab finetune` leaves it, as far as export reads it, with lineage.json naming `output`."""
    run = root / "runs" / "r"
    (run / "adapter").mkdir(parents=True, exist_ok=True)
    for name in ADAPTER_FILES:
        (run / "adapter" / name).write_text("{}", encoding="utf-8")
    (run / "lineage.json").write_text(json.dumps({"output": output, "base_model": {"name": "tiny"}}), encoding="utf-8")
    return run


def test_export_refuses_lineage_paths_outside_the_run_folder(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for name in ADAPTER_FILES:
        (elsewhere / name).write_text("{}", encoding="utf-8")
    out = tmp_path / "out"
    for output in ("../../elsewhere", str(elsewhere), "adapter/../../../elsewhere", "/etc", ".", "", None):
        run = _run_folder(tmp_path, output)
        with pytest.raises(ConfigError, match="is not a folder inside the run folder"):
            export(run, "peft", out)
        assert not out.exists()
    (run / "link").symlink_to(elsewhere)
    _run_folder(tmp_path, "link")
    with pytest.raises(ConfigError, match="is not a folder inside the run folder"):
        export(run, "peft", out)
    _run_folder(tmp_path, "adapter")
    (run / "adapter" / ADAPTER_FILES[1]).unlink()
    (run / "adapter" / ADAPTER_FILES[1]).symlink_to(elsewhere / ADAPTER_FILES[1])
    with pytest.raises(ConfigError, match="adapter_model.safetensors point outside"):
        export(run, "peft", out)
    assert not out.exists()
    (run / "adapter" / ADAPTER_FILES[1]).unlink()
    _run_folder(tmp_path, "adapter")
    assert export(run, "peft", out) == out  # the run's own adapter/ still exports
    assert {p.name for p in out.iterdir()} == {*ADAPTER_FILES, "adaptlab.json"}


def test_atomic_folder_never_deletes_what_it_did_not_create(tmp_path, monkeypatch):
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "theirs.txt").write_text("theirs", encoding="utf-8")
    with pytest.raises(AdaptlabError, match="existing already exists"):
        with atomic_folder(existing) as tmp:
            (tmp / "mine.txt").write_text("mine", encoding="utf-8")
    assert [p.name for p in existing.iterdir()] == ["theirs.txt"]

    late = tmp_path / "late"
    with pytest.raises(AdaptlabError, match="appeared while it was being written"):
        with atomic_folder(late) as tmp:
            (tmp / "mine.txt").write_text("mine", encoding="utf-8")
            late.mkdir()  # another process got there first
            (late / "theirs.txt").write_text("theirs", encoding="utf-8")
    assert [p.name for p in late.iterdir()] == ["theirs.txt"]

    (tmp_path / ".tmp-failed").mkdir()  # another writer's temp folder, by the old naming
    (tmp_path / ".tmp-failed" / "part").write_text("x", encoding="utf-8")
    with pytest.raises(RuntimeError):
        with atomic_folder(tmp_path / "failed") as tmp:
            raise RuntimeError("the work failed")
    assert not (tmp_path / "failed").exists() and (tmp_path / ".tmp-failed" / "part").is_file()

    import os

    def refuse(src, dst):
        raise OSError("rename failed")

    monkeypatch.setattr(os, "rename", refuse)
    with pytest.raises(OSError, match="rename failed"):
        with atomic_folder(tmp_path / "renamed") as tmp:
            (tmp / "mine.txt").write_text("mine", encoding="utf-8")
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".tmp-failed",
        "existing",
        "late",
    ]  # every temp folder of its own is gone

    with atomic_folder(tmp_path / "done") as tmp:
        (tmp / "mine.txt").write_text("mine", encoding="utf-8")
    assert [p.name for p in (tmp_path / "done").iterdir()] == ["mine.txt"]


def test_rows_held_out_for_fine_tunings_dev_split_are_held_out_of_the_few_shot_pool_too(tmp_path, tiny_model_dir):
    """Equal data: prompted and fine-tuned contenders learn from the same rows (issue 17, item 6)."""
    import json

    from conftest import CARD_ROWS, cards_experiment

    from adaptlab.runs.compare import run_compare

    cards_experiment(
        tmp_path,
        tiny_model_dir,
        [(f"{text} ({i})", label) for i in range(4) for text, label in CARD_ROWS],
        [("my card never came", "card_arrival"), ("card was stolen", "lost_or_stolen_card")],
        """  - {name: few_shot, k: 2, selector: random}
  - {name: lora, epochs: 1, batch_size: 8, bf16: false, dev_fraction: 0.25}
  - {id: lora_all, name: lora, epochs: 1, batch_size: 8, bf16: false, dev_fraction: 0}
""",
        "e.yaml",
    )
    results, run_dir = run_compare(tmp_path / "e.yaml", tmp_path / "run")
    held = results["data"]["held_out_for_dev"]
    assert held["rows"] == 12 and len(set(held["lines"])) == 12
    pool = json.loads((run_dir / "solvers" / "few_shot" / "pool.json").read_text())["examples"]
    assert len(pool) == 36 and not {e["line"] for e in pool} & set(held["lines"])
    lora, lora_all = (next(s for s in results["strategies"] if s["name"] == n)["solver"] for n in ("lora", "lora_all"))
    assert (lora["train_rows"], lora["dev_rows"]) == (36, 12) and (lora_all["train_rows"], lora_all["dev_rows"]) == (
        36,
        0,
    )


def test_the_published_json_schemas_are_generated_from_the_result_models():
    import json

    from adaptlab.results import reference, schemas

    folder = Path(__file__).parents[1] / "docs" / "schema"
    for name, schema in schemas().items():
        assert json.loads((folder / name).read_text(encoding="utf-8")) == schema, (
            f"docs/schema/{name} is out of date: run python -m adaptlab.results docs/schema"
        )
    assert (folder.parent / "results.md").read_text(encoding="utf-8") == reference(), (
        "docs/results.md is out of date: run python -m adaptlab.results docs/schema"
    )


def test_results_of_an_older_run_load_and_a_broken_one_names_its_field(tmp_path):
    import json

    from adaptlab.errors import AdaptlabError
    from adaptlab.report import write_report
    from adaptlab.results import load_results

    # a classify run from before every metric had an interval (ci95: the headline's only) and before flags and traits
    old = {
        "task": {
            "name": "cards",
            "instruction": "Route it.",
            "kind": "classify",
            "labels": ["a", "b"],
            "metric": "accuracy",
        },
        "base_model": "smollm2-135m-instruct",
        "data": {"train": "train.jsonl", "test": "test.jsonl"},
        "seed": 0,
        "environment": {"python": "3.11.7", "machine": "x86_64", "device": "cpu"},
        "strategies": [
            {
                "name": "majority",
                "metrics": {"accuracy": 0.5},
                "ci95": [0.2, 0.8],
                "latency_ms_mean": 0.1,
                "latency_ms_p95": 0.1,
                "prompt_tokens_mean": 0,
                "completion_tokens_mean": 0,
                "fit_seconds": 0.0,
                "peak_rss_mb": 300,
                "predictions": [{"input": "x", "expected": "a", "predicted": "a"}],
            }
        ],
        "recommendation": {"choice": "majority", "reasons": ["only one"]},
        "cost_assumptions": {"device": "cpu"},
        "audit": {},
        "notes": ["baselines ran"],
    }
    (tmp_path / "results.json").write_text(json.dumps(old), encoding="utf-8")
    results = load_results(tmp_path / "results.json")
    assert results.contender("majority").ci == {"accuracy": [0.2, 0.8]} and results.contender("majority").flags == []
    page = write_report(tmp_path).read_text(encoding="utf-8")
    assert "majority" in page and "does not match" not in page  # the report of an old run
    old["strategies"][0]["metrics"] = {"accuracy": "high"}
    (tmp_path / "results.json").write_text(json.dumps(old), encoding="utf-8")
    with pytest.raises(AdaptlabError, match=r"results.json: field strategies.0.metrics.accuracy"):
        load_results(tmp_path / "results.json")
    page = write_report(tmp_path).read_text(encoding="utf-8")
    assert (
        "field strategies.0.metrics.accuracy" in page and "the report shows what it can" in page
    )  # shown as far as it goes, and said


def test_a_compare_that_stopped_resumes_with_the_contenders_it_finished(card_experiment, tmp_path, monkeypatch):
    import adaptlab.runs.compare as compare
    from adaptlab.runs.compare import run_compare
    from adaptlab.runs.events import Events

    measured = []
    real = compare.evaluate

    def evaluate(strategy, task, train, test, **kwargs):
        if kwargs["name"] == "lora" and not measured.count("resumed"):
            raise RuntimeError("killed while training lora")
        measured.append(kwargs["name"])
        return real(strategy, task, train, test, **kwargs)

    monkeypatch.setattr(compare, "evaluate", evaluate)
    with pytest.raises(RuntimeError, match="killed"):
        run_compare(card_experiment, tmp_path / "run")
    assert json.loads((tmp_path / "run" / "run.json").read_text(encoding="utf-8"))["status"] == "failed"
    finished = sorted(p.stem for p in (tmp_path / "run" / "contenders").glob("*.json"))
    assert finished == sorted(measured) and "lora" not in finished
    first = {
        name: json.loads((tmp_path / "run" / "contenders" / f"{name}.json").read_text(encoding="utf-8"))["evaluation"]
        for name in finished
    }

    heard = []

    class Heard(Events):
        def message(self, text, level="info"):
            heard.append(text)

    measured.append("resumed")
    results, run_dir = run_compare(None, events=Heard(), resume=tmp_path / "run")
    assert run_dir == (tmp_path / "run").resolve() and measured[-1] == "lora"  # only lora ran again
    assert {s["name"] for s in results["strategies"]} == set(finished) | {"lora"}
    for s in results["strategies"]:
        if s["name"] in first:
            assert s["predictions"] == first[s["name"]]["predictions"] and s["metrics"] == first[s["name"]]["metrics"]
            assert any(text.startswith(f"{s['name']}: as measured before the run stopped") for text in heard)
    assert json.loads((tmp_path / "run" / "run.json").read_text(encoding="utf-8"))["status"] == "completed"
    with pytest.raises(ConfigError, match="completed .*nothing to resume"):
        run_compare(None, resume=tmp_path / "run")
