"""The command line: help without torch, compare end to end on the tiny model, clear errors."""

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from adaptlab.cli import app
from adaptlab.errors import ConfigError

runner = CliRunner()


def test_help_does_not_import_torch():
    code = (
        "import sys; from adaptlab.cli import app; from typer.testing import CliRunner; r = "
        "CliRunner().invoke(app, ['--help']); r2 = CliRunner().invoke(app, ['compare', '--help']); "
        "print(r.exit_code, r2.exit_code, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["0", "0", "False"]


def test_version_short_help_on_every_command_brackets_and_switches():
    import typer
    from typer.testing import CliRunner

    from adaptlab import __version__
    from adaptlab.cli import app

    runner = CliRunner()
    assert runner.invoke(app, ["--version"]).output.strip() == f"adaptlab {__version__}"
    root = typer.main.get_command(app)
    commands = [[name] for name in root.commands] + [
        [name, sub] for name, group in root.commands.items() for sub in getattr(group, "commands", {})
    ]
    assert len(commands) >= 12
    for command in [[]] + commands:
        short, long = runner.invoke(app, command + ["-h"]), runner.invoke(app, command + ["--help"])
        assert short.exit_code == 0 and short.output == long.output, command
        assert "<bool>" not in short.output, f"{command}: a switch shown with a value"
    assert "pip install 'adaptlab[mlflow]'" in " ".join(
        runner.invoke(app, ["compare", "-h"]).output.split()
    )  # brackets print as written
    for command in (
        ["compare"],
        ["sweep"],
        ["finetune"],
        ["audit"],
        ["serve"],
    ):  # --model wherever a base model is used
        assert "--model" in runner.invoke(app, command + ["-h"]).output, command


def test_compare_and_registry_list_print_json_for_scripts(card_experiment, tmp_path):
    import json

    from typer.testing import CliRunner

    from adaptlab.cli import app

    runner = CliRunner()
    done = runner.invoke(app, ["compare", str(card_experiment), "--out", str(tmp_path / "run"), "--json"])
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout)
    saved = json.loads((tmp_path / "run" / "results.json").read_text(encoding="utf-8"))
    assert summary["choice"] == saved["recommendation"]["choice"] and summary["results"] == str(
        tmp_path / "run" / "results.json"
    )
    assert [c["name"] for c in summary["contenders"]] == [s["name"] for s in saved["strategies"]]
    assert all(c["ci"][0] <= c["accuracy"] <= c["ci"][1] for c in summary["contenders"])
    listed = json.loads(runner.invoke(app, ["registry", "list", "--json"]).stdout)
    assert {v["contender"] for v in listed if v["run_id"] == "run"} == {c["name"] for c in summary["contenders"]}


def test_finetune_model_cannot_change_a_resumed_run(tmp_path):
    from adaptlab.errors import ConfigError
    from adaptlab.runs.finetune import run_finetune

    with pytest.raises(ConfigError, match="--model cannot change a run being resumed"):
        run_finetune(resume=tmp_path, model="other")


def test_compare_end_to_end(card_experiment, tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(app, ["compare", str(card_experiment), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Recommendation:" in result.stdout and "zero_shot" in result.stdout and "lora" in result.stdout
    results = json.loads((out / "results.json").read_text())
    assert results["task"]["kind"] == "classify" and len(results["task"]["labels"]) == 3
    assert [s["name"] for s in results["strategies"]] == [
        "majority",
        "embed_classifier",
        "zero_shot",
        "few_shot",
        "lora",
    ]
    for s in results["strategies"]:
        llm = s["name"] not in ("majority", "embed_classifier")
        assert set(s["metrics"]) == {"accuracy", "macro_f1"} | (
            {"accuracy_length_normalised", "macro_f1_length_normalised"} if llm else set()
        )
        assert 0 <= s["metrics"]["accuracy"] <= 1
        assert (
            s["latency_ms_p50"] <= s["latency_ms_p95"]
            and s["peak_rss_mb"] > 0
            and (not llm or s["latency_ms_mean"] > 0)
        )
        assert (s["prompt_tokens_mean"] > 0) == (s["name"] not in ("majority", "embed_classifier"))
        assert len(s["predictions"]) == 6 and set(s["predictions"][0]) >= {"input", "expected", "predicted"}
        # accuracy is what the predictions say it is
        hits = sum(p["expected"] == p["predicted"] for p in s["predictions"])
        assert s["metrics"]["accuracy"] == hits / 6
        assert (
            set(s["ci"]) == {"accuracy", "macro_f1"}
            and s["latency_ms_p50"] >= 0
            and sum(map(sum, (r.values() for r in s["confusion"].values()))) == 6
        )
        assert s["cost_per_1k_queries"] >= 0 and s["fit_cost"] >= 0 and (not llm or s["cost_per_1k_queries"] > 0)
    assert len(results["pairwise"]) == 10 and all(0 <= r["p_value"] <= 1 for r in results["pairwise"])
    assert [(r["fine_tuned"], r["prompted"]) for r in results["break_even_queries"]] == [
        ("lora", "zero_shot"),
        ("lora", "few_shot"),
    ]
    assert results["cost_assumptions"]["dollars_per_hour"] == 0.10 and "break-even, lora vs zero_shot" in result.stdout
    assert results["strategies"][4]["fit_seconds"] > results["strategies"][2]["fit_seconds"]
    assert results["strategies"][0]["labels_predicted"] == 1  # majority
    assert (
        results["recommendation"]["choice"]
        in {"majority", "embed_classifier", "zero_shot", "few_shot", "lora", "collect_more_data"}
        and results["recommendation"]["reasons"]
    )
    assert (out / "experiment.yaml").is_file() and (out / "solvers" / "lora" / "adapter_model.safetensors").is_file()
    assert set(results["audit"]["criteria"]) == {"representative", "diverse", "balanced", "consistent", "relevant"}
    assert "audit of the training data" in result.stdout


def test_unknown_key_exits_2_naming_it(tmp_path):
    (tmp_path / "e.yaml").write_text(
        "task: {name: t, instruction: x}\ndata: {train: a, test: b}\nstrategies: [{name: zero_shot, temperature: 0}]\n"
    )
    result = runner.invoke(app, ["compare", str(tmp_path / "e.yaml")])
    # the runner does not go through main(), which maps the exception to exit 2
    assert isinstance(result.exception, ConfigError) and result.exception.exit_code == 2
    assert "unknown key 'strategies[0].temperature'" in str(result.exception)


def test_main_turns_data_errors_into_exit_2_with_the_line(card_experiment, tmp_path):
    (card_experiment.parent / "train.jsonl").write_text('{"input": "a", "output": "x"}\n{"input": "b"}\n')
    proc = subprocess.run(
        [sys.executable, "-c", "from adaptlab.cli import main; main()", "compare", str(card_experiment)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "train.jsonl line 2: field 'output'" in proc.stderr and "Traceback" not in proc.stderr


def test_markup_like_text_in_a_data_error_is_printed_literally(tmp_path, monkeypatch, capsys):
    from adaptlab.cli import main

    def chat(role):
        return json.dumps({"messages": [{"role": role, "content": "hi"}, {"role": "assistant", "content": "x"}]})  # noqa: E731

    (tmp_path / "train.jsonl").write_text(chat("[/x]") + "\n" + chat("[bold]boss") + "\n")
    monkeypatch.setattr(sys, "argv", ["adaptlab", "audit", str(tmp_path / "train.jsonl")])
    with pytest.raises(SystemExit) as exited:
        main()
    stderr = capsys.readouterr().err
    assert exited.value.code == 2
    assert "line 1: field 'messages[0].role': unknown role '[/x]'" in stderr and "unknown role '[bold]boss'" in stderr


def test_compare_generate_task_with_model_override(tmp_path, tiny_model_dir):
    rows = [("say card", "card card"), ("say lost", "lost lost"), ("say atm", "atm atm"), ("say new", "new new")]
    for name in ("train", "test"):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps({"input": i, "output": o}) + "\n" for i, o in rows))
    (tmp_path / "e.yaml").write_text(
        "task: {name: echo, instruction: Repeat the word twice.}\ndata: {train: train.jsonl, test: "
        "test.jsonl, allow_overlap: true}\nmodel: no-such-model\nstrategies: [{name: zero_shot}]\n"
    )
    result = runner.invoke(
        app, ["compare", str(tmp_path / "e.yaml"), "--out", str(tmp_path / "run"), "--model", str(tiny_model_dir)]
    )
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["task"]["kind"] == "generate" and results["base_model"] == str(tiny_model_dir)
    assert [s["name"] for s in results["strategies"]] == [
        "constant",
        "nearest",
        "zero_shot",
    ]  # the generate task's references run first
    s = results["strategies"][-1]
    assert (
        set(s["metrics"]) == {"exact_match", "token_f1", "chrf"}
        and 0 <= s["metrics"]["chrf"] <= 100
        and set(s["ci"]) == set(s["metrics"])
    )
    assert "chrf" in result.stdout
    assert (
        results["strategies"][1]["metrics"]["exact_match"] == 1.0
    )  # test rows are the training rows here: the lookup finds each one


def test_baselines_can_be_switched_off_and_are_refused_on_generate(card_experiment, tmp_path):
    text = card_experiment.read_text()
    card_experiment.write_text(
        text.replace("strategies:", "baselines: false\nstrategies:").replace(
            "  - {name: few_shot, k: 2, selector: random}\n  - {name: lora, epochs: 2, batch_size: "
            "4, learning_rate: 0.01, bf16: false}\n",
            "",
        )
    )
    result = runner.invoke(app, ["compare", str(card_experiment), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert [s["name"] for s in json.loads((tmp_path / "run" / "results.json").read_text())["strategies"]] == [
        "zero_shot"
    ]
    card_experiment.write_text(
        text.replace("  - name: zero_shot", "  - name: majority").replace(
            "task: {name: cards,", "task: {kind: generate, name: cards,"
        )
    )
    result = runner.invoke(app, ["compare", str(card_experiment)])
    assert isinstance(
        result.exception, ConfigError
    ) and "'majority' (majority) answers classify tasks, but this task is generate" in str(result.exception)


def test_audit_command_json_and_exit_2_on_bad_data(tmp_path, tiny_model_dir):
    from conftest import CARD_ROWS, write_jsonl

    write_jsonl(tmp_path / "train.jsonl", CARD_ROWS + [CARD_ROWS[0]])
    result = runner.invoke(app, ["audit", str(tmp_path / "train.jsonl"), "--json", "--model", str(tiny_model_dir)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report["criteria"]) == {"representative", "diverse", "balanced", "consistent", "relevant"}
    assert {"line": 13, "reason": "exact duplicate of line 1", "file": "train"} in report["criteria"]["diverse"][
        "flagged"
    ]
    assert (
        report["tokens"]["input_max"] > 0
        and report["tokens"]["context_length"] == 512
        and report["tokens"]["longer_than_context"] == []
    )
    (tmp_path / "bad.jsonl").write_text('{"input": "a", "output": "x"}\n{"input": "b"}\n')
    result = runner.invoke(app, ["audit", str(tmp_path / "bad.jsonl"), "--json"])
    assert result.exit_code == 2
    assert json.loads(result.stdout) == [
        {
            "code": "missing_field",
            "file": str(tmp_path / "bad.jsonl"),
            "line": 2,
            "field": "output",
            "message": "is missing",
            "hint": "every line needs 'input' and 'output'",
        }
    ]
