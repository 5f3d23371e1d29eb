"""MLflow tracking and registry (issue 20, item 2): a compare logged to a real SQLite MLflow store, read back with
MlflowClient; the `champion` alias moved by `adaptlab registry promote`; a clear error without the extra."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from conftest import CARD_ROWS, write_jsonl
from typer.testing import CliRunner

import adaptlab
from adaptlab.cli import app
from adaptlab.errors import ConfigError
from adaptlab.home import adaptlab_home
from adaptlab.registry import default_registry

runner = CliRunner()
TEST_ROWS = [
    ("my card never came", "card_arrival"),
    ("card was stolen", "lost_or_stolen_card"),
    ("the ATM kept it", "card_swallowed"),
    ("where's my card", "card_arrival"),
]


@pytest.fixture
def tracked_experiment(tmp_path, tiny_model_dir):
    """Three contenders on the tiny model, logged to a SQLite MLflow store in tmp_path by the experiment's `mlflow:`
    field."""
    write_jsonl(tmp_path / "train.jsonl", CARD_ROWS)
    write_jsonl(tmp_path / "test.jsonl", TEST_ROWS)
    path = tmp_path / "experiment.yaml"
    path.write_text(
        f"""task: {{name: cards, instruction: "Route the message."}}
data: {{train: train.jsonl, test: test.jsonl}}
model: {tiny_model_dir}
baselines: false
mlflow: {{tracking_uri: "sqlite:///{tmp_path}/mlflow.db", experiment: cards-exp}}
strategies:
  - name: zero_shot
  - {{id: few_k2, name: few_shot, k: 2, selector: random}}
  - {{name: lora, epochs: 1, batch_size: 4, learning_rate: 0.01, bf16: false, dev_fraction: 0}}
""",
        encoding="utf-8",
    )
    return path


def _client(uri):
    import mlflow

    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def _artifacts(client, run_id, path=None) -> set[str]:
    return {a.path for a in client.list_artifacts(run_id, path)}


def test_compare_logs_runs_metrics_and_the_champion_and_promote_moves_it(tracked_experiment, tmp_path, tiny_model_dir):
    out = tmp_path / "run"
    result = runner.invoke(app, ["compare", str(tracked_experiment), "--out", str(out)])
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    record = json.loads((out / "mlflow.json").read_text())
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    assert record["tracking_uri"] == uri and f"parent run {record['parent_run_id']}" in result.stdout
    client = _client(uri)
    experiment = client.get_experiment_by_name("cards-exp")
    assert experiment.artifact_location == str(
        tmp_path / "mlartifacts"
    )  # beside the database, not in the working directory

    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert (
        len(parents) == 1 and parents[0].info.run_id == record["parent_run_id"] and parents[0].info.run_name == out.name
    )
    parent = parents[0]
    choice = results["recommendation"]["choice"]
    assert (
        parent.data.tags["recommendation"] == choice
        and parent.data.tags["train_sha256"] == results["data"]["train_hash"]
    )
    assert (
        parent.data.params["task.name"] == "cards"
        and parent.data.params["seed"] == "0"
        and parent.data.params["baselines"] == "false"
    )
    assert _artifacts(client, parent.info.run_id) == {"results.json", "report.html", "experiment.yaml"}
    assert parent.info.status == "FINISHED"

    children = {
        r.data.tags["contender"]: r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id
    }
    assert set(children) == {"zero_shot", "few_k2", "lora"} == set(record["runs"]) and len(runs) == 4
    for s in results["strategies"]:
        child = children[s["name"]]
        metrics, tags = child.data.metrics, child.data.tags
        for key, value in s["metrics"].items():
            assert metrics[key] == value
        for key, (low, high) in s["ci"].items():
            assert (metrics[f"{key}_low"], metrics[f"{key}_high"]) == (low, high)
        for key in (
            "p_best",
            "fit_seconds",
            "latency_ms_mean",
            "latency_ms_p50",
            "latency_ms_p95",
            "prompt_tokens_mean",
            "peak_rss_mb",
            "cost_per_1k_queries",
            "fit_cost",
        ):
            assert metrics[key] == s[key], key
        assert (
            tags["kind"] == s["traits"]["kind"]
            and tags["family"] == s["traits"]["family"]
            and tags["base_model"] == str(tiny_model_dir)
        )
        assert (tags["train_sha256"], tags["test_sha256"]) == (
            results["data"]["train_hash"],
            results["data"]["test_hash"],
        )
        assert tags["registry_ref"] == s["solver"]["registered_as"]
        assert "predictions.jsonl" in _artifacts(client, child.info.run_id)
    assert (
        children["few_k2"].data.tags["kind"] == "few_shot"
        and children["few_k2"].data.params["k"] == "2"
        and children["few_k2"].data.params["selector"] == "random"
    )
    lora = children["lora"].data.params
    assert lora["epochs"] == "1" and lora["learning_rate"] == "0.01" and lora["target_modules"] == "all-linear"
    assert children["lora"].data.tags["family"] == "fine_tuned"
    written = client.download_artifacts(children["lora"].info.run_id, "predictions.jsonl", str(tmp_path))
    rows = [json.loads(line) for line in open(written, encoding="utf-8")]
    assert rows == results["strategies"][2]["predictions"]

    # the recommended contender's registry version is MLflow's champion, with its verified files under its child run
    assert choice in children
    chosen = next(s for s in results["strategies"] if s["name"] == choice)
    champion = client.get_model_version_by_alias("cards", "champion")
    assert champion.tags["registry_ref"] == chosen["solver"]["registered_as"] == record["champion"]["ref"]
    assert champion.run_id == children[choice].info.run_id and champion.source.endswith("/solver")
    registry = default_registry()
    files = set(registry.get(champion.tags["registry_ref"]).files)
    assert {p.split("/")[-1] for p in _artifacts(client, champion.run_id, "solver")} == files

    # promoting another version moves the alias there (registering it in MLflow first), and back again
    other = next(s for s in results["strategies"] if s["name"] != choice)
    moved = runner.invoke(app, ["registry", "promote", other["solver"]["registered_as"]])
    assert moved.exit_code == 0, moved.output
    assert f"is 'champion' at {uri}" in moved.stdout
    now = client.get_model_version_by_alias("cards", "champion")
    assert now.tags["registry_ref"] == other["solver"]["registered_as"] and now.version != champion.version
    assert now.run_id == children[other["name"]].info.run_id
    assert {p.split("/")[-1] for p in _artifacts(client, now.run_id, "solver")} == set(
        registry.get(other["solver"]["registered_as"]).files
    )
    assert runner.invoke(app, ["registry", "promote", chosen["solver"]["registered_as"]]).exit_code == 0
    assert client.get_model_version_by_alias("cards", "champion").version == champion.version
    assert len(client.search_model_versions("name = 'cards'")) == 2  # the existing version was reused
    assert registry.get("cards").ref == chosen["solver"]["registered_as"]


def _hand_made_version(tmp_path, run_id=None):
    """A registry version built without a compare (a saved zero-shot solver is one JSON file)."""
    folder = tmp_path / "solver"
    folder.mkdir()
    (folder / "solver.json").write_text(json.dumps({"strategy": "zero_shot"}), encoding="utf-8")
    registry = default_registry()
    return registry, registry.add_version("notes", "zero_shot", folder, {"metrics": {"accuracy": 0.5}}, run_id=run_id)


def test_promote_with_an_mlflow_uri_registers_a_version_compare_did_not_log(tmp_path):
    registry, version = _hand_made_version(tmp_path)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    result = runner.invoke(app, ["registry", "promote", version.ref, "--mlflow-uri", uri])
    assert result.exit_code == 0, result.output
    client = _client(uri)
    champion = client.get_model_version_by_alias("notes", "champion")
    assert champion.tags["registry_ref"] == version.ref
    run = client.get_run(champion.run_id)
    assert run.info.run_name == version.ref and run.data.tags["kind"] == "zero_shot"
    assert client.get_experiment(run.info.experiment_id).name == "notes"
    assert _artifacts(client, run.info.run_id, "solver") == {"solver/solver.json"}
    assert registry.get("notes").ref == version.ref


def test_without_mlflow_installed_tracking_fails_first_with_the_install_command(
    tracked_experiment, tmp_path, monkeypatch
):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow now raises ImportError
    install = r"pip install 'adaptlab\[mlflow\]'"
    with pytest.raises(ConfigError, match=install):  # the experiment's `mlflow:` field asks for it
        adaptlab.compare(tracked_experiment)
    with pytest.raises(ConfigError, match=install + r"`, or leave off --mlflow"):
        adaptlab.compare(tracked_experiment, mlflow=True)
    result = runner.invoke(app, ["compare", str(tracked_experiment), "--mlflow-uri", "sqlite:///x.db"])
    assert isinstance(result.exception, ConfigError) and "pip install 'adaptlab[mlflow]'" in str(result.exception)
    assert not (adaptlab_home() / "runs").exists()  # refused before a run folder was made or anything fitted
    # a version whose compare was logged to MLflow is not promoted without it
    run = tmp_path / "logged-run"
    run.mkdir()
    (run / "mlflow.json").write_text(json.dumps({"tracking_uri": f"sqlite:///{tmp_path}/mlflow.db"}), encoding="utf-8")
    registry = default_registry()
    registry.add_run("logged-run", "compare", str(run), {}, None, "completed")
    _, version = _hand_made_version(tmp_path, run_id="logged-run")
    result = runner.invoke(app, ["registry", "promote", version.ref])
    assert (
        isinstance(result.exception, ConfigError)
        and "pip install 'adaptlab[mlflow]'" in str(result.exception)
        and "mlflow.json aside" in str(result.exception)
    )
    assert "--mlflow-uri" not in str(result.exception)  # not given, so leaving it off is no way out
    assert not any(v.promoted for v in registry.versions())
    # without MLflow in use, promote needs no mlflow
    plain = registry.add_version("notes", "zero_shot", tmp_path / "solver", {})
    assert runner.invoke(app, ["registry", "promote", plain.ref]).exit_code == 0


def test_the_mlflow_field_is_validated_and_off_by_default():
    from adaptlab.runs.experiment import parse_experiment

    base = {
        "task": {"name": "t", "instruction": "x"},
        "data": {"train": "a", "test": "b"},
        "strategies": [{"name": "zero_shot"}],
    }
    assert parse_experiment(base).mlflow is None
    assert parse_experiment({**base, "mlflow": {}}).mlflow.tracking_uri is None
    with pytest.raises(ConfigError, match=r"unknown key 'mlflow.uri'"):
        parse_experiment({**base, "mlflow": {"uri": "sqlite:///m.db"}})


def test_help_loads_neither_mlflow_nor_torch():
    code = (
        "import sys; from adaptlab.cli import app; from typer.testing import CliRunner; codes = "
        "[CliRunner().invoke(app, a).exit_code for a in (['--help'], ['compare', '--help'], ['registry', "
        "'promote', '--help'])]; print(codes, 'mlflow' in sys.modules, 'torch' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split() == [
        "[0,",
        "0,",
        "0]",
        "False",
        "False",
    ]


def test_a_store_that_cannot_be_used_fails_before_anything_is_fitted(tracked_experiment, tmp_path):
    bad = tmp_path / "not-a-database.db"
    bad.write_text("these are notes, not an MLflow database\n" * 100, encoding="utf-8")
    with pytest.raises(
        ConfigError, match=r"cannot use the MLflow tracking store sqlite:///.*not-a-database.db .*check the URI"
    ):
        adaptlab.compare(tracked_experiment, mlflow=f"sqlite:///{bad}")
    retries, clock = os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES"), time.monotonic()
    with pytest.raises(
        ConfigError, match=r"cannot use the MLflow tracking store http://127.0.0.1:9 .*start the server"
    ):
        adaptlab.compare(tracked_experiment, mlflow="http://127.0.0.1:9")  # nothing listens on the discard port
    assert time.monotonic() - clock < 30  # one try: MLflow's own retries would take ~4 minutes
    assert os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES") == retries  # the probe's setting is not left behind
    assert not (adaptlab_home() / "runs").exists()
