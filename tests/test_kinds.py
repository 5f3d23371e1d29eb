"""Strategy kinds: one module each, one table; contenders with ids; solvers that load themselves on their own base."""

import ast
import json
import re
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Literal

import httpx
import pytest
from conftest import CARD_ROWS, serving, write_jsonl

SRC = Path(__file__).resolve().parents[1] / "src" / "adaptlab"
TEST_ROWS = [
    ("my card never came", "card_arrival"),
    ("card was stolen", "lost_or_stolen_card"),
    ("the ATM kept it", "card_swallowed"),
]


def _experiment(root: Path, model, strategies: str, baselines: bool = False) -> Path:
    write_jsonl(root / "train.jsonl", CARD_ROWS)
    write_jsonl(root / "test.jsonl", TEST_ROWS)
    (root / "e.yaml").write_text(f"""task: {{name: cards, instruction: "Route the message."}}
data: {{train: train.jsonl, test: test.jsonl}}
model: {model}
baselines: {str(baselines).lower()}
strategies:
{strategies}""")
    return root / "e.yaml"


@pytest.fixture
def running():
    """Start ASGI apps on free loopback ports; all stopped at the end."""
    with ExitStack() as stack:
        yield lambda app: stack.enter_context(serving(app))


def fake_endpoint():
    """An OpenAI-compatible chat endpoint that answers every question with the first label its system turn lists."""
    from fastapi import FastAPI, Request

    app = FastAPI()
    app.state.requests = []

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        body = await request.json()
        app.state.requests.append(body)
        system = body["messages"][0]["content"]
        label = (
            system.split("one label from:")[-1].split(",")[0].strip(" .") if "one label from:" in system else "hello"
        )
        return {
            "choices": [{"message": {"role": "assistant", "content": label}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 2},
        }

    return app


# --- a kind declared here, in a test file, runs everywhere -----------------------------------


def longest_kind():
    """A kind that answers every query with the longest training output: declared here, registered through the table."""
    from adaptlab.config import StrategyConfig
    from adaptlab.kinds import Kind
    from adaptlab.solver import Prediction, read_solver_json, write_solver_json
    from adaptlab.task import Task

    class LongestConfig(StrategyConfig):
        """Always the longest training output."""

        name: Literal["longest"]

    class LongestSolver:
        strategy = "longest"

        def __init__(self, task, answer):
            self.task, self.answer = task, answer

        def predict(self, inputs, progress=None):
            if progress:
                progress(len(inputs))
            return [Prediction(self.answer, 0, 0, 0.0) for _ in inputs]

        def describe(self):
            return {"strategy": self.strategy, "answer": self.answer}

        def save(self, folder):
            write_solver_json(folder, self, self.task)

    class Longest:
        name = "longest"

        def fit(self, task, train, dev=None, progress=None):
            return LongestSolver(task, max(train.outputs, key=lambda o: (len(o), o)))

    def load(folder, ctx):
        info = read_solver_json(folder, "longest")
        return LongestSolver(Task.from_dict(info["task"]), info["answer"])

    return Kind("longest", "baseline", LongestConfig, build=lambda config, ctx: Longest(), load=load, tier=0, llm=False)


def test_a_kind_declared_in_a_test_runs_through_compare_registry_server_and_report(
    tmp_path, tiny_model_dir, tiny_base, running
):
    from adaptlab import kinds
    from adaptlab.registry import default_registry
    from adaptlab.runs.compare import run_compare
    from adaptlab.serve import Limits, ServedModels, create_app

    kinds.register(longest_kind())
    try:
        experiment = _experiment(tmp_path, tiny_model_dir, "  - {name: longest}\n  - {name: zero_shot}\n")
        results, run_dir = run_compare(experiment, tmp_path / "run")
        ours = next(s for s in results["strategies"] if s["name"] == "longest")
        assert ours["traits"]["family"] == "baseline" and {p["predicted"] for p in ours["predictions"]} == {
            "lost_or_stolen_card"
        }
        assert "longest" in (run_dir / "report.html").read_text()
        registry = default_registry()
        version = next(v for v in registry.versions("cards") if v.strategy == "longest")
        url = running(create_app(ServedModels(tiny_base, registry), "tiny", None, Limits()))
        reply = httpx.post(
            f"{url}/v1/chat/completions", json={"model": version.ref, "messages": [{"role": "user", "content": "hi"}]}
        )
        assert reply.status_code == 200 and reply.json()["choices"][0]["message"]["content"] == "lost_or_stolen_card"
        assert version.ref in [m["id"] for m in httpx.get(f"{url}/v1/models").json()["data"]]
    finally:
        kinds.unregister("longest")


FIELD_NAMES = {
    "abstain",
    "constant",
}  # kinds named like fields (Task.abstain, the `constant` trait): as a key or .get() argument they are the field

# Modules that still name a kind and are someone else's to mend: path (under src/adaptlab) -> why. Empty now; a file
# is added here only while the work that mends it is under way, and the test fails once a listed file names no kind,
# so the list can only shrink.
NOT_YET_MENDED: dict[str, str] = {}


def _is_field_use(node, parents) -> bool:
    """A string used as a dict key, a subscript, a .get/.pop argument or a keyword: a field's name, not a kind's."""
    parent = parents.get(node)
    if (
        isinstance(parent, ast.Dict)
        and node in parent.keys
        or isinstance(parent, ast.Subscript)
        and parent.slice is node
    ):
        return True
    return (
        isinstance(parent, ast.Call)
        and isinstance(parent.func, ast.Attribute)
        and parent.func.attr in ("get", "pop", "setdefault")
    )


def _docstrings(tree) -> set:
    """The docstring nodes of a module and of its classes and functions (prose may name a kind)."""
    owners = [
        n for n in ast.walk(tree) if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
    ]
    return {
        n.body[0].value
        for n in owners
        if n.body
        and isinstance(n.body[0], ast.Expr)
        and isinstance(n.body[0].value, ast.Constant)
        and isinstance(n.body[0].value.value, str)
    }


def kind_names_in(path: Path, names: set[str], root: Path = SRC) -> list[str]:
    """Each string literal in `path`'s code equal to a kind's name, as "file:line: 'name'" (docstrings, comments and
    field uses aside)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    prose = _docstrings(tree)
    return [
        f"{path.relative_to(root)}:{node.lineno}: {node.value!r}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value in names
        and node not in prose
        and not (node.value in FIELD_NAMES and _is_field_use(node, parents))
    ]


def test_no_module_names_a_kind_outside_its_own_module():
    """A kind's name as a string literal in code anywhere but its module, the table or the task kinds (their references)
    means something branches on it: ask the kind's traits instead (decide/advice.py votes on traits, serve/vllm.py asks
    `export_shots` and `reads_documents`, evaluation/freshness.py asks `reads_documents`)."""
    from adaptlab import kinds

    names = set(kinds.names())
    allowed = (
        {SRC / "kinds" / "__init__.py"} | {SRC / "kinds" / f"{n}.py" for n in names} | set((SRC / "tasks").glob("*.py"))
    )
    found, mended = [], []
    for path in sorted(SRC.rglob("*.py")):
        if path in allowed:
            continue
        named = kind_names_in(path, names)
        if str(path.relative_to(SRC)) in NOT_YET_MENDED:
            mended += [] if named else [str(path.relative_to(SRC))]
        else:
            found += named
    assert not found, "kind names outside their modules (ask the kind's traits instead):\n" + "\n".join(found)
    assert not mended, f"these files name no kind any more: remove them from NOT_YET_MENDED: {mended}"


def test_the_kind_name_check_sees_code_and_not_prose(tmp_path):
    """The check above can fail: a comparison with a kind's name is found, the same name in a docstring is not."""
    module = tmp_path / "sniff.py"
    module.write_text(
        '"""lora"""\n\ndef f(solver):\n    """rag"""\n    return solver.strategy == "lora" or {"abstain": 1}\n'
    )
    assert kind_names_in(module, {"lora", "rag", "abstain"}, tmp_path) == ["sniff.py:5: 'lora'"]


FAMILY_NAMES = {"baseline", "prompted", "fine_tuned"}
# Comparisons with a family's name that ask a results row for one of its keys, not a kind for its family: path (under
# src/adaptlab) -> those comparisons, as ast.unparse writes them. The break-even and sweep rows keep the keys
# "fine_tuned" and "prompted" (the published results schema). The test fails once a listed one is gone.
FAMILY_KEYS_ASKED: dict[str, set[str]] = {"report/charts.py": {"'prompted' in row"}}


def family_comparisons_in(path: Path, root: Path = SRC) -> list[str]:
    """Each comparison in `path` with a family's name as an operand (or inside a tuple, list or set operand), as
    "file:line: source"; a family's name as a dict key or a subscript is a results field, not compared."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        values = [v for o in operands for v in (o.elts if isinstance(o, (ast.Tuple, ast.List, ast.Set)) else [o])]
        if any(isinstance(v, ast.Constant) and v.value in FAMILY_NAMES for v in values):
            found.append(f"{path.relative_to(root)}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_module_compares_with_a_family_name_outside_the_kinds():
    """`e.family == "fine_tuned"` asks what a trait answers: Kind.trains, prompted, tunes_instruction; an Evaluation's
    trains and prompted; kinds.family_trains / family_prompted for a family a contender's settings decide (rag with
    fine_tune). Only kinds/ knows what each family's name means."""
    found, asked = [], set()
    for path in sorted(SRC.rglob("*.py")):
        rel = str(path.relative_to(SRC))
        if path.parent == SRC / "kinds":
            continue
        for hit in family_comparisons_in(path):
            source = hit.split(": ", 1)[1]
            (asked.add((rel, source)) if source in FAMILY_KEYS_ASKED.get(rel, ()) else found.append(hit))
    assert not found, "comparisons with a family's name (ask the kind's traits instead):\n" + "\n".join(found)
    listed = {(rel, source) for rel, sources in FAMILY_KEYS_ASKED.items() for source in sources}
    assert asked == listed, f"no longer in the code: remove from FAMILY_KEYS_ASKED: {sorted(listed - asked)}"


def test_the_family_check_sees_comparisons_and_not_results_keys(tmp_path):
    module = tmp_path / "sniff.py"
    module.write_text(
        "def f(e, family, row):\n"
        '    a = e.family == "fine_tuned"\n'
        '    b = family in ("prompted", "fine_tuned")\n'
        '    c = row["fine_tuned"] != e.name or {"baseline": 1}.get(family)\n'
        '    return "baseline" != family\n'
    )
    assert [hit.split(":")[1] for hit in family_comparisons_in(module, tmp_path)] == ["2", "3", "5"]


def hand_lists_in(text: str, names) -> list[tuple[str, str]]:
    """Two of `names` side by side in `text` ("zero_shot, few_shot", "lora or full", "`classify`/`generate`"): a list
    typed by hand."""
    alternatives = "|".join(sorted(map(re.escape, names), key=len, reverse=True))
    return re.findall(rf"`?\b({alternatives})\b`?(?:, |,? and |,? or |/)`?\b({alternatives})\b", text)


def _cli_help() -> str:
    sys.path.insert(0, str(SRC.parents[1] / "docs"))
    try:
        import gen_cli_reference
    finally:
        sys.path.pop(0)
    return gen_cli_reference.cli_reference()


def test_no_help_text_description_or_message_lists_kinds_by_hand():
    """Every command's --help, and every string in src/ outside the tables (docstrings aside): a list of kinds
    comes from the tables when it is made (settings.md appends the config's, from `kind_lists`), or is not written."""
    from adaptlab import kinds, tasks

    found = []
    for names in (kinds.names(), tasks.task_kind_names()):
        found += [f"adaptlab --help: {pair}" for pair in hand_lists_in(_cli_help(), names)]
        for path in sorted(SRC.rglob("*.py")):
            if path.parent in (SRC / "kinds", SRC / "tasks"):
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            prose = _docstrings(tree)
            found += [
                f"{path.relative_to(SRC)}:{node.lineno}: {pair}"
                for node in ast.walk(tree)
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and node not in prose
                for pair in hand_lists_in(node.value, names)
            ]
    assert not found, "kinds listed by hand (build the list from the table):\n" + "\n".join(found)
    assert hand_lists_in("one prompting (zero_shot, few_shot) and one (lora or full)", kinds.names()) == [
        ("zero_shot", "few_shot"),
        ("lora", "full"),
    ]


def test_the_lists_built_from_the_tables_name_every_registered_kind():
    """A kind and a task kind registered here: the settings reference, the vLLM export's refusals and the
    questionnaire's task kinds name them, as they name every built-in one."""
    import dataclasses

    from typer.testing import CliRunner

    from adaptlab import kinds, tasks
    from adaptlab.cli import app
    from adaptlab.cli.recommend import task_kind_question
    from adaptlab.serve.vllm import not_exportable

    sys.path.insert(0, str(SRC.parents[1] / "docs"))
    try:
        from gen_cli_reference import kind_lists
    finally:
        sys.path.pop(0)
    kinds.register(longest_kind())
    tasks.register(dataclasses.replace(tasks.task_kind("generate"), name="summarise", references=("longest",)))
    try:
        lists = kind_lists()
        assert all(f"`{n}`" in lists["StrategyConfig"]["name"] for n in kinds.names()) and "longest" in kinds.names()
        assert all(f"`{n}`" in lists["TaskConfig"]["kind"] for n in tasks.task_kind_names())
        references = {r for t in tasks.task_kinds() for r in t.references}
        assert all(f"`{r}`" in lists["ExperimentConfig"]["baselines"] for r in references) and "longest" in references
        refused = not_exportable()
        assert all(re.search(rf"\b{k.name}\b", refused) for k in kinds.kinds() if not k.llm or k.own_weights)
        question, offered = task_kind_question()
        assert offered == tasks.task_kind_names() and "summarise" in offered and "summarise:" in question
        asked = CliRunner().invoke(
            app, ["recommend", "--questionnaire"], input="400\nsummarise\n\n\ngpu\nrarely\ngeneral\nloose\nno\n"
        )
        assert asked.exit_code == 0 and "[classify/generate/qa/summarise]" in asked.stdout, asked.stdout
    finally:
        tasks.unregister("summarise")
        kinds.unregister("longest")


def test_the_questionnaire_offers_qa_and_leans_on_reading_the_documents():
    """qa answers from documents: a kind that reads them is a candidate there (and only there), and is favoured."""
    from typer.testing import CliRunner

    from adaptlab.cli import app
    from adaptlab.config import ConstraintsConfig
    from adaptlab.decide.advice import advise, candidates

    readers = [k.name for k in kinds_reading_documents()]
    assert readers and all(n in [k.name for k in candidates("qa")] for n in readers)
    assert not any(n in [k.name for k in candidates("generate")] for n in readers)
    assert advise(60, "qa", ConstraintsConfig()).choice in readers
    asked = CliRunner().invoke(app, ["recommend", "--questionnaire"], input="60\nqa\n\n\ngpu\nrarely\n\n\nno\n")
    assert asked.exit_code == 0 and "/qa]" in asked.stdout and "answers from the team's documents" in asked.stdout
    assert asked.stdout.split("Leaning: ")[1].split()[0] in readers


def kinds_reading_documents():
    from adaptlab import kinds

    return [k for k in kinds.kinds() if k.llm and k.reads_documents]


def test_no_module_asks_a_solver_what_it_is_with_hasattr():
    """A solver's abilities come from its kind's traits (Kind.reads_documents) or a declared protocol, not from
    hasattr."""
    found = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "hasattr"
                and node.args
                and "solver" in ast.unparse(node.args[0]).lower()
            ):
                found.append(f"{path.relative_to(SRC)}:{node.lineno}: {ast.unparse(node)}")
    assert not found, found


def test_no_library_module_imports_rich():
    """Terminal output lives in cli/ only; runs report through Events."""
    offenders = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC)
        if rel.parts[0] == "cli":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            modules = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            offenders += [f"{rel}: {m}" for m in modules if m.split(".")[0] == "rich"]
    assert not offenders, offenders


# --- contenders with ids --------------------------------------------------------------------


def test_five_contenders_of_three_kinds_with_their_own_ids_in_one_compare(tmp_path, tiny_model_dir, running):
    from adaptlab.registry import default_registry
    from adaptlab.runs.compare import run_compare

    endpoint = fake_endpoint()
    url = running(endpoint)
    experiment = _experiment(
        tmp_path,
        tiny_model_dir,
        f"""  - {{id: few_shot_k4, name: few_shot, k: 4, selector: random}}
  - {{id: few_shot_k8, name: few_shot, k: 8, selector: random}}
  - {{id: hosted_few_shot, name: few_shot, k: 8, selector: random, model: {{base_url: "{url}/v1", name: big-model, max_retries: 0}}}}
  - {{id: lora_r8, name: lora, r: 8, epochs: 1, batch_size: 4, bf16: false}}
  - {{id: lora_r16, name: lora, r: 16, learning_rate: 0.002, epochs: 1, batch_size: 4, bf16: false}}
""",
    )
    results, run_dir = run_compare(experiment, tmp_path / "run")
    ids = ["few_shot_k4", "few_shot_k8", "hosted_few_shot", "lora_r8", "lora_r16"]
    assert [s["name"] for s in results["strategies"]] == ids
    assert [s["traits"]["kind"] for s in results["strategies"]] == ["few_shot"] * 3 + ["lora"] * 2
    assert results["recommendation"]["choice"] in ids
    assert {p["a"] for p in results["pairwise"]} | {p["b"] for p in results["pairwise"]} == set(ids)
    assert endpoint.state.requests and all(
        len(r["messages"]) == 1 + 2 * 8 + 1 for r in endpoint.state.requests
    )  # k=8 shots each
    assert all((run_dir / "solvers" / i / "solver.json").is_file() for i in ids)
    report = (run_dir / "report.html").read_text()
    assert all(i in report for i in ids)
    versions = {v.contender: v for v in default_registry().versions("cards")}
    assert set(versions) == set(ids) and versions["lora_r16"].strategy == "lora"
    assert (
        json.loads((run_dir / "solvers" / "hosted_few_shot" / "solver.json").read_text())["endpoint"]["base_url"]
        == f"{url}/v1"
    )


def test_one_id_twice_is_an_error_that_says_to_give_ids():
    from adaptlab.errors import ConfigError
    from adaptlab.runs.experiment import parse_experiment

    base = {"task": {"name": "t", "instruction": "x"}, "data": {"train": "a", "test": "b"}}
    with pytest.raises(ConfigError, match="give each entry of one kind its own `id`"):
        parse_experiment(base | {"strategies": [{"name": "few_shot"}, {"name": "few_shot", "k": 8}]})
    config = parse_experiment(base | {"strategies": [{"name": "few_shot"}, {"id": "k8", "name": "few_shot", "k": 8}]})
    assert [s.key for s in config.strategies] == ["few_shot", "k8"]
    with pytest.raises(ConfigError, match=r"'strategies\[0\].id'"):
        parse_experiment(base | {"strategies": [{"id": "Bad Id", "name": "zero_shot"}]})


# --- the server serves a version only on the base it was fitted on ---------------------------


def _other_model(tmp_path, tiny_model_dir) -> Path:
    """The tiny model with one weight changed: another base model with the same shapes."""
    import shutil

    from safetensors.torch import load_file, save_file

    other = tmp_path / "other-model"
    shutil.copytree(tiny_model_dir, other)
    weights = load_file(other / "model.safetensors")
    name = next(iter(weights))
    weights[name] = weights[name] + 1.0
    save_file(weights, other / "model.safetensors", metadata={"format": "pt"})
    return other


def test_the_server_refuses_a_version_fitted_on_another_base_and_forwards_remote_ones(
    tmp_path, tiny_model_dir, running
):
    from adaptlab.models import load_base_model
    from adaptlab.registry import default_registry
    from adaptlab.runs.compare import run_compare
    from adaptlab.serve import Limits, ServedModels, create_app

    endpoint = fake_endpoint()
    remote = running(endpoint)
    other = _other_model(tmp_path, tiny_model_dir)
    experiment = _experiment(
        tmp_path,
        other,
        f"""  - {{name: zero_shot}}
  - {{id: lora_other, name: lora, epochs: 1, batch_size: 4, bf16: false}}
  - {{id: hosted, name: zero_shot, model: {{base_url: "{remote}/v1", name: big-model, max_retries: 0}}}}
""",
    )
    run_compare(experiment, tmp_path / "run")
    registry = default_registry()
    refs = {v.contender: v.ref for v in registry.versions("cards")}
    served = load_base_model(str(tiny_model_dir), device="cpu")  # not the base these versions were fitted on
    url = running(create_app(ServedModels(served, registry), "tiny", None, Limits()))
    ask = {"messages": [{"role": "user", "content": "my card never came"}]}
    for contender in ("zero_shot", "lora_other"):
        reply = httpx.post(f"{url}/v1/chat/completions", json=ask | {"model": refs[contender]})
        message = reply.json()["error"]["message"]
        assert (
            reply.status_code == 503
            and "other-model" in message
            and str(tiny_model_dir.name) in message
            and "/" not in message.replace("/v1", "")
        )
    before = len(endpoint.state.requests)
    forwarded = httpx.post(f"{url}/v1/chat/completions", json=ask | {"model": refs["hosted"]})
    assert forwarded.status_code == 200 and forwarded.json()["choices"][0]["message"]["content"] == "card_arrival"
    assert len(endpoint.state.requests) == before + 1 and endpoint.state.requests[-1]["model"] == "big-model"


def test_an_unreachable_endpoint_answers_502_not_500(tmp_path, tiny_model_dir, tiny_base, running):
    from adaptlab.registry import default_registry
    from adaptlab.runs.compare import run_compare
    from adaptlab.serve import Limits, ServedModels, create_app

    endpoint = running(fake_endpoint())
    experiment = _experiment(
        tmp_path,
        tiny_model_dir,
        f"""  - {{id: hosted, name: zero_shot, model: {{base_url: "{endpoint}/v1", name: big-model, max_retries: 0}}}}\n""",
    )
    run_compare(experiment, tmp_path / "run")
    version = default_registry().versions("cards")[-1]
    solver_json = version.folder / "solver.json"
    info = json.loads(solver_json.read_text())
    info["endpoint"]["base_url"] = "http://127.0.0.1:9/v1"  # nothing listens there
    moved = tmp_path / "moved"
    moved.mkdir()
    (moved / "solver.json").write_text(json.dumps(info))
    (moved / "task.json").write_text((version.folder / "task.json").read_text())
    gone = default_registry().add_version("cards", "zero_shot", moved, version.lineage, contender="hosted_gone")
    url = running(create_app(ServedModels(tiny_base, default_registry()), "tiny", None, Limits()))
    reply = httpx.post(
        f"{url}/v1/chat/completions", json={"model": gone.ref, "messages": [{"role": "user", "content": "hi"}]}
    )
    assert reply.status_code == 502 and "127.0.0.1:9" not in reply.text


def test_an_adaptlab_finetune_run_is_registered_and_served(tmp_path, tiny_model_dir, tiny_base, running):
    from adaptlab.registry import default_registry
    from adaptlab.runs.finetune import run_finetune
    from adaptlab.serve import Limits, ServedModels, create_app

    experiment = _experiment(tmp_path, tiny_model_dir, "  - {name: lora, epochs: 1, batch_size: 4, bf16: false}\n")
    lineage, run_dir = run_finetune(experiment, out=tmp_path / "ft")
    version = default_registry().get(lineage["registered_as"])
    assert version.strategy == "lora" and version.run_id == run_dir.name
    url = running(create_app(ServedModels(tiny_base, default_registry()), "tiny", None, Limits()))
    reply = httpx.post(
        f"{url}/v1/chat/completions",
        json={"model": version.ref, "messages": [{"role": "user", "content": "my card never came"}]},
    )
    assert reply.status_code == 200 and reply.json()["choices"][0]["message"]["content"] in {o for _, o in CARD_ROWS}


def test_a_full_fine_tune_is_served_as_its_own_model(tmp_path, tiny_model_dir, tiny_base, running):
    from adaptlab.registry import default_registry
    from adaptlab.runs.compare import run_compare
    from adaptlab.serve import Limits, ServedModels, create_app

    experiment = _experiment(
        tmp_path, tiny_model_dir, "  - {name: full, epochs: 1, batch_size: 4, bf16: false, learning_rate: 0.01}\n"
    )
    results, _ = run_compare(experiment, tmp_path / "run")
    version = default_registry().versions("cards")[-1]
    assert version.strategy == "full" and "model.safetensors" in version.files
    url = running(create_app(ServedModels(tiny_base, default_registry()), "tiny", None, Limits()))
    replies = [
        httpx.post(
            f"{url}/v1/chat/completions", json={"model": version.ref, "messages": [{"role": "user", "content": text}]}
        )
        for text, _ in TEST_ROWS
    ]
    assert all(r.status_code == 200 for r in replies)
    assert [r.json()["choices"][0]["message"]["content"] for r in replies] == [
        p["predicted"] for p in results["strategies"][0]["predictions"]
    ]  # as measured


def test_registry_check_load_loads_every_version_the_way_the_server_does(tmp_path, tiny_model_dir):
    from typer.testing import CliRunner

    from adaptlab.cli import app
    from adaptlab.registry import default_registry
    from adaptlab.runs.compare import run_compare

    run_compare(
        _experiment(
            tmp_path, tiny_model_dir, "  - {name: zero_shot}\n  - {name: lora, epochs: 1, batch_size: 4, bf16: false}\n"
        ),
        tmp_path / "run",
    )
    ok = CliRunner().invoke(app, ["registry", "check", "--load"])
    assert ok.exit_code == 0 and "0 problem(s)" in ok.output
    version = default_registry().versions("cards")[0]
    moved = tmp_path / "moved"
    moved.mkdir()
    info = json.loads((version.folder / "solver.json").read_text()) | {
        "base_model": str(tmp_path / "gone-model"),
        "base_sha256": None,
    }
    (moved / "solver.json").write_text(json.dumps(info))
    orphan = default_registry().add_version("cards", version.strategy, moved, version.lineage)
    bad = CliRunner().invoke(app, ["registry", "check", "--load"])
    assert bad.exit_code == 1 and f"{orphan.ref}: does not load" in bad.output and "1 problem(s)" in bad.output
