"""The Python API (issue 20, item 1): what a notebook calls, on the tiny model."""

import json

import pytest

import adaptlab


def test_import_adaptlab_is_light_and_lists_its_api():
    import subprocess
    import sys

    code = "import sys, adaptlab; adaptlab.Comparison; print('torch' in sys.modules)"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
        == "False"
    )
    assert set(adaptlab.__all__) == {"compare", "sweep", "audit_data", "review", "judge", "Comparison", "__version__"}
    with pytest.raises(AttributeError):
        _ = adaptlab.nothing_here


def test_compare_from_a_path_returns_tables_that_match_results_json(card_experiment, tmp_path):
    heard = []
    result = adaptlab.compare(card_experiment, out=tmp_path / "run", progress=heard.append)
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert (
        result.results.model_dump(mode="json", exclude_unset=True) == saved
        and result.choice == saved["recommendation"]["choice"]
        and result.report.is_file()
    )
    table = result.to_pandas()
    assert list(table.index) == [s["name"] for s in saved["strategies"]]
    for s in saved["strategies"]:
        assert (
            table.loc[s["name"], "accuracy"] == s["metrics"]["accuracy"]
            and table.loc[s["name"], "accuracy_low"] == s["ci"]["accuracy"][0]
        )
        assert table.loc[s["name"], "p_best"] == s["p_best"]
    rows = result.predictions_to_pandas()
    assert len(rows) == len(saved["strategies"]) * 6 and set(rows["contender"]) == set(table.index)
    assert any("6 test examples" in line for line in heard)


def test_compare_takes_a_mapping_validated_like_the_yaml(card_experiment, tmp_path, monkeypatch):
    import yaml

    from adaptlab.errors import ConfigError

    raw = yaml.safe_load(card_experiment.read_text())
    raw["strategies"] = [{"name": "zero_shot"}]
    raw["baselines"] = False
    monkeypatch.chdir(card_experiment.parent)  # a mapping's data paths are relative to the working directory
    result = adaptlab.compare(raw, out=tmp_path / "run")
    assert [s.name for s in result.results.strategies] == ["zero_shot"]
    with pytest.raises(ConfigError, match=r"'strategies\[0\].k'"):
        adaptlab.compare({**raw, "strategies": [{"name": "few_shot", "k": -1}]})


def test_audit_data_reads_paths(card_experiment):
    report = adaptlab.audit_data(
        card_experiment.parent / "train.jsonl", card_experiment.parent / "test.jsonl", instruction="Route the message."
    )
    assert set(report.scores()) == {"representative", "diverse", "balanced", "consistent", "relevant"}
