"""The review page (issue 38, part R): ratings kept durably per reviewer, imports checked line by line, a seeded plan
over the pairs worth comparing, a blind API, and the page itself driven by keyboard in real Chromium."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from conftest import chromium_browser, free_port, serving
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from adaptlab.cli import app as cli
from adaptlab.errors import DataError
from adaptlab.results import load_results, write_results
from adaptlab.reviews import PREFERENCE_VALUE, Rating, append_rating, import_ratings, load_ratings, oriented
from adaptlab.reviews.app import create_review_app
from adaptlab.reviews.plan import SHARED, plan_for, rated_keys, review_secret
from adaptlab.reviews.ratings import read_reviewer_file, reviewer_file

NAMES = ("alpha_x", "beta_y", "gamma_z")  # names no answer or input contains, so a leak is visible
ROWS = 15
CONVERSATION = range(0, 6)  # rows 0-5: turns 1, 3, ..., 11 of one conversation
IDENTICAL = (2, 7, 12)  # rows where alpha's and beta's answers are the same text but for case and spaces


def _answer(name: str, row: int) -> str:
    if name == "beta_y" and row in IDENTICAL:
        return f"  THE answer   for row {row}. "
    answers = {
        "alpha_x": "The answer for row {r}.",
        "beta_y": "Another reply, row {r}.",
        "gamma_z": "Row {r}: <b>x</b>",
    }
    return answers.get(name, "Nothing to say about row {r}.").format(r=row)


def _prediction(row: int, name: str) -> dict:
    if row in CONVERSATION:
        turns = [f"User: question {k}\nAssistant: reply {k}" for k in range(row)] + [f"User: question {row}"]
        return {
            "input": "\n".join(turns),
            "expected": f"reply {row}",
            "predicted": _answer(name, row),
            "line": 1,
            "conversation": "talk-1",
            "turn": 2 * row + 1,
        }
    passages = [{"source": "handbook.md", "text": f"Passage for row {row}.", "score": 0.5}]
    return {
        "input": f"Question {row}?",
        "expected": f"Reference {row}",
        "predicted": _answer(name, row),
        "line": row + 1,
        "passages": passages if name != "gamma_z" else passages + [{"source": "faq.txt", "text": "More."}],
    }


def _contender(name: str, kind: str | None = None) -> dict:
    return {
        "name": name,
        "metrics": {"chrf": 50.0},
        "ci": {"chrf": [40.0, 60.0]},
        "latency_ms_mean": 1.0,
        "latency_ms_p95": 1.0,
        "prompt_tokens_mean": 0.0,
        "completion_tokens_mean": 0.0,
        "fit_seconds": 0.0,
        "peak_rss_mb": 0.0,
        "predictions": [_prediction(r, name) for r in range(ROWS)],
        "traits": {"kind": kind or name},
    }


def _run(root: Path, names=NAMES, pairwise=(), seed: int = 0) -> Path:
    """A compare run folder with results.json: `names` as contenders on ROWS test rows."""
    run = root / "run"
    run.mkdir(parents=True, exist_ok=True)
    write_results(
        run / "results.json",
        {
            "task": {"name": "bank", "instruction": "Help.", "kind": "generate", "metric": "chrf"},
            "base_model": "m",
            "data": {},
            "seed": seed,
            "environment": {},
            "strategies": [_contender(n) for n in names],
            "recommendation": {"choice": names[0], "reasons": [], "tolerance": 2.0},
            "pairwise": list(pairwise),
            "cost_assumptions": {},
            "audit": {},
        },
    )
    return run


@pytest.fixture
def run(tmp_path) -> Path:
    return _run(tmp_path)


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# ---- ratings ------------------------------------------------------------------------------------------------


def test_a_rating_told_from_the_other_side_flips_its_preference_scores_and_side():
    r = Rating(row=1, a="alpha_x", b="beta_y", preference="a", score_a=5, score_b=2, left="b", reviewer="ana")
    flipped = oriented(r, "beta_y", "alpha_x")
    assert (flipped.a, flipped.preference, flipped.score_a, flipped.score_b, flipped.left) == ("beta_y", "b", 2, 5, "a")
    assert PREFERENCE_VALUE[flipped.preference] == 1 - r.value == 0.0
    assert oriented(r, "alpha_x", "beta_y") is r
    assert oriented(r.model_copy(update={"preference": "both_bad"}), "beta_y", "alpha_x").value == 0.5
    with pytest.raises(ValueError):
        oriented(r, "alpha_x", "gamma_z")


@pytest.mark.parametrize("name", ["../evil", ".hidden", "a b", "", "x" * 65, "a/b", "nul\x00"])
def test_a_reviewer_name_that_is_not_a_safe_file_name_is_refused(name, run):
    with pytest.raises(ValueError, match="reviewer name"):
        Rating(row=0, a="alpha_x", b="beta_y", preference="a", reviewer=name)
    assert not (run / "ratings").exists()


def test_the_latest_word_of_a_reviewer_on_a_row_and_pair_wins_either_way_round(run):
    append_rating(run, Rating(row=3, a="alpha_x", b="beta_y", preference="a", reviewer="ana"))
    append_rating(run, Rating(row=3, a="beta_y", b="alpha_x", preference="tie", reviewer="ana"))
    append_rating(run, Rating(row=3, a="alpha_x", b="beta_y", preference="b", reviewer="bob"))
    got = {(r.reviewer, r.row): r.preference for r in load_ratings(run)}
    assert got == {("ana", 3): "tie", ("bob", 3): "b"} and len(load_ratings(run)) == 2


def test_a_line_cut_short_by_a_kill_is_left_out_and_the_next_rating_starts_a_line_of_its_own(run):
    append_rating(run, Rating(row=0, a="alpha_x", b="beta_y", preference="a", reviewer="ana"))
    path = reviewer_file(run, "ana")
    with path.open("a") as f:
        f.write('{"row": 1, "a": "alpha_x", "b": "be')  # the write a kill cut short, never acknowledged
    assert len(read_reviewer_file(path)) == 1
    append_rating(run, Rating(row=2, a="alpha_x", b="beta_y", preference="b", reviewer="ana"))
    assert [r.row for r in read_reviewer_file(path)] == [0, 2] and len(path.read_text().splitlines()) == 2
    with path.open("a") as f:  # a whole rating without its newline (a hand edit) is kept
        f.write(Rating(row=3, a="alpha_x", b="beta_y", preference="a", reviewer="ana").model_dump_json())
    append_rating(run, Rating(row=4, a="alpha_x", b="beta_y", preference="b", reviewer="ana"))
    assert [r.row for r in read_reviewer_file(path)] == [0, 2, 3, 4]
    with path.open("a") as f:
        f.write("not json\n")
    append_rating(run, Rating(row=5, a="alpha_x", b="beta_y", preference="b", reviewer="ana"))
    with pytest.raises(DataError, match="line 5"):  # a bad line that is not the last is never silently skipped
        read_reviewer_file(path)


# ---- import ----------------------------------------------------------------------------------------------------


def test_import_reads_jsonl_and_csv_and_files_each_reviewers_ratings_under_their_name(run, tmp_path):
    jsonl = tmp_path / "ratings.jsonl"
    jsonl.write_text(
        json.dumps({"row": 0, "a": "alpha_x", "b": "beta_y", "preference": "a", "reviewer": "ana"})
        + "\n\n"
        + json.dumps({"row": 14, "a": "gamma_z", "b": "beta_y", "preference": "both_bad", "score_a": 1, "score_b": 2})
        + "\n"
    )
    assert len(import_ratings(run, jsonl, reviewer="carol")) == 2
    csv_file = tmp_path / "ratings.csv"
    csv_file.write_bytes(
        "\ufeffrow,a,b,preference,reviewer,score_a,score_b,comment\r\n"
        '1,alpha_x,gamma_z,tie,ana,,,"two lines,\r\nquoted"\r\n'
        "2,beta_y,alpha_x,B,dan,4,5,\r\n".encode()
    )
    imported = import_ratings(run, csv_file)
    assert [(r.reviewer, r.row, r.preference, r.score_a, r.score_b) for r in imported] == [
        ("ana", 1, "tie", None, None),
        ("dan", 2, "b", 4, 5),
    ]
    assert imported[0].comment == "two lines,\nquoted" and {r.source for r in load_ratings(run)} == {"import"}
    assert sorted(p.name for p in (run / "ratings").iterdir()) == ["ana.jsonl", "carol.jsonl", "dan.jsonl"]
    assert [r["row"] for r in _lines(run / "ratings" / "ana.jsonl")] == [0, 1]


BAD_LINES = [
    ({"row": 15}, "row", "not a test row of this run"),
    ({"row": -1}, "row", "greater than or equal to 0"),
    ({"row": "three"}, "row", "valid integer"),
    ({"a": "delta"}, "a", "not a contender of this run"),
    ({"b": "alpha_x"}, None, "two different contenders"),
    ({"preference": "maybe"}, "preference", "'a', 'b', 'tie' or 'both_bad'"),
    ({"score_a": 6}, "score_a", "less than or equal to 5"),
    ({"reviewer": "../x"}, "reviewer", "reviewer name"),
    ({"winner": "a"}, "winner", "unknown field"),
]


@pytest.mark.parametrize("change,field,says", BAD_LINES)
def test_one_bad_line_is_named_by_number_and_field_and_nothing_is_imported(run, tmp_path, change, field, says):
    append_rating(run, Rating(row=0, a="alpha_x", b="beta_y", preference="a", reviewer="ana"))
    before = reviewer_file(run, "ana").read_bytes()
    good = {"row": 1, "a": "alpha_x", "b": "beta_y", "preference": "a", "reviewer": "ana"}
    lines = [good, good | {"row": 2}, good | change, good | {"row": 3, "reviewer": "bob"}]
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with pytest.raises(DataError) as caught:
        import_ratings(run, path)
    [problem] = caught.value.problems
    assert (problem.file, problem.line, problem.field) == (str(path), 3, field)
    assert says in str(caught.value) and "line 3" in str(caught.value)
    assert reviewer_file(run, "ana").read_bytes() == before and not reviewer_file(run, "bob").exists()


def test_import_lists_every_bad_line_and_reads_broken_json_csv_columns_and_encoding(run, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"row": 0, "a": "alpha_x", "b": "beta_y", "preference": "a"},\n[1, 2]\n{"row": 1}\n')
    with pytest.raises(DataError) as caught:
        import_ratings(run, path)
    assert [(p.line, p.code) for p in caught.value.problems] == [(1, "json"), (2, "not_object"), (3, "invalid")]
    csv_file = tmp_path / "bad.csv"
    csv_file.write_text("row,a,preference\n0,alpha_x,a\n")
    with pytest.raises(DataError, match="no column b"):
        import_ratings(run, csv_file)
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(b'{"row": 0, "a": "alpha_x", "b": "beta_y", "preference": "a"}\n{"comment": "caf\xe9"}\n')
    with pytest.raises(DataError, match="line 2: not valid UTF-8"):
        import_ratings(run, latin)
    empty = tmp_path / "empty.csv"
    empty.write_text("row,a,b,preference\n")
    with pytest.raises(DataError, match="no ratings"):
        import_ratings(run, empty)
    assert not (run / "ratings").exists()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=300), suffix=st.sampled_from([".jsonl", ".csv"]))
def test_any_bytes_imported_give_ratings_or_a_data_error_never_another_exception(run, tmp_path, raw, suffix):
    path = tmp_path / f"any{suffix}"
    path.write_bytes(raw)
    try:
        imported = import_ratings(run, path)
    except DataError as exc:
        assert exc.problems and all(p.file == str(path) for p in exc.problems)
    else:
        assert imported and all(isinstance(r, Rating) for r in imported)


def test_the_cli_imports_and_prints_counts_per_reviewer_and_pair_or_the_bad_line(run, tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("row,a,b,preference\n0,alpha_x,beta_y,a\n1,beta_y,alpha_x,tie\n4,alpha_x,gamma_z,b\n")
    result = CliRunner().invoke(cli, ["review", str(run), "--import", str(path), "--reviewer", "eve"])
    assert result.exit_code == 0, result.output
    assert "imported 3 rating(s)" in result.output
    assert "eve: alpha_x vs beta_y: 2" in result.output and "eve: alpha_x vs gamma_z: 1" in result.output
    path.with_suffix(".jsonl").write_text(json.dumps({"row": 9, "a": "gamma_z", "b": "beta_y", "preference": "a"}))
    path.write_text("row,a,b,preference\n0,alpha_x,beta_y,a\n99,beta_y,alpha_x,tie\n")
    result = CliRunner().invoke(cli, ["review", str(run), "--import", str(path)])
    assert isinstance(result.exception, DataError) and result.exception.exit_code == 2  # main() exits with it
    assert "line 3: field 'row'" in str(result.exception)
    home_run = Path(os.environ["ADAPTLAB_HOME"]) / "runs" / "20260101-bank-1a2b3c"  # a run id, not a folder
    shutil.copytree(run, home_run)
    result = CliRunner().invoke(cli, ["review", "20260101-bank-1a2b3c", "--import", str(path.with_suffix(".jsonl"))])
    assert result.exit_code == 0 and len(load_ratings(home_run)) == 4  # its own 3 and the one imported here
    result = CliRunner().invoke(cli, ["review", str(tmp_path / "nowhere")])
    assert result.exit_code != 0 and "no results.json" in str(result.exception)
    result = CliRunner().invoke(cli, ["review", str(run), "--host", "0.0.0.0"], env={"ADAPTLAB_API_KEY": ""})
    assert "set ADAPTLAB_API_KEY first" in str(result.exception)


# ---- plan ------------------------------------------------------------------------------------------------------


def test_the_plan_is_seeded_skips_identical_answers_and_deals_the_pairs_in_turn(run):
    results = load_results(run / "results.json")
    plan = plan_for(results, "ana")
    assert plan == plan_for(results, "ana") and plan.items != plan_for(results, "ana", seed=1).items
    assert plan.pairs == (("alpha_x", "beta_y"), ("alpha_x", "gamma_z"), ("beta_y", "gamma_z"))
    assert plan.skipped_identical == len(IDENTICAL) and len(plan.items) == 3 * ROWS - len(IDENTICAL)
    assert not [i for i in plan.items if {i.a, i.b} == {"alpha_x", "beta_y"} and i.row in IDENTICAL]
    assert len(set(i.key for i in plan.items)) == len(plan.items)
    for n in (9, 18, 30, 36):  # any prefix gives every pair its share, give or take one
        shares = Counter((i.a, i.b) for i in plan.items[:n])
        assert max(shares.values()) - min(shares.values()) <= 1 and len(shares) == 3
    assert {i.left for i in plan.items} == {"a", "b"}
    assert plan.target == min(len(plan.items), 50 * 3)


def test_reviewers_share_the_first_items_then_start_apart_and_each_resumes_where_they_stopped(run):
    results = load_results(run / "results.json")
    ana, bob = plan_for(results, "ana"), plan_for(results, "bob", shared=6)
    assert [i.key for i in ana.items[:6]] == [i.key for i in bob.items[:6]]
    assert [i.key for i in plan_for(results, "ana", shared=6).items[6:12]] != [i.key for i in bob.items[6:12]]
    assert sorted((i.key for i in ana.items), key=str) == sorted((i.key for i in bob.items), key=str)
    done = ana.items[:5]
    for item in done:  # rated the other way round: the same comparison
        append_rating(run, Rating(row=item.row, a=item.b, b=item.a, preference="a", reviewer="ana"))
    rated = rated_keys(load_ratings(run), "ana")
    assert ana.next_item(rated) == ana.items[5] and ana.rated_of(rated) == 5
    assert bob.next_item(rated_keys(load_ratings(run), "bob")) == bob.items[0]
    assert ana.next_item({i.key for i in ana.items}) is None


def test_pairs_a_trivial_reference_loses_by_far_are_not_planned(tmp_path):
    far = {"a": "constant", "b": "alpha_x", "difference": -30.0, "ci95": [-35.0, -25.0], "test": "t", "p_value": 0.0}
    near = far | {"b": "beta_y", "difference": -1.0, "ci95": [-3.0, 1.0]}
    run = _run(tmp_path, ("constant", "alpha_x", "beta_y"), pairwise=[far, near])
    plan = plan_for(load_results(run / "results.json"), "ana")
    assert plan.pairs == (("constant", "beta_y"), ("alpha_x", "beta_y"))
    assert SHARED <= len(plan.items)


# ---- the API ---------------------------------------------------------------------------------------------------


def _client(run: Path, **kwargs) -> TestClient:
    return TestClient(create_review_app(run, **kwargs), base_url="http://127.0.0.1")


def test_the_api_is_blind_saves_each_click_as_a_and_b_and_answers_errors_in_json(run):
    client = _client(run)
    page = client.get("/")
    seen = [page.text]
    item = client.get("/api/next", params={"reviewer": "ana"}).json()
    seen.append(json.dumps(item))
    shown = item["item"]
    plan = plan_for(load_results(run / "results.json"), "ana", salt=review_secret(run))
    first = plan.items[0]
    assert shown["row"] == first.row and item["progress"]["rated"] == 0
    left = first.a if first.left == "a" else first.b
    assert shown["left"]["answer"] == _answer(left, first.row)
    saved = client.post(
        "/api/rate",
        json={"reviewer": "ana", "item": shown["id"], "choice": "right", "score_left": 2, "comment": " fine "},
    )
    seen.append(saved.text)
    assert saved.json()["progress"]["rated"] == 1
    [line] = _lines(reviewer_file(run, "ana"))
    right = "b" if first.left == "a" else "a"
    assert line["preference"] == right and line[f"score_{first.left}"] == 2 and f"score_{right}" not in line
    assert (line["a"], line["b"], line["left"], line["comment"], line["source"]) == (
        first.a,
        first.b,
        first.left,
        "fine",
        "page",
    )
    following = client.get("/api/next", params={"reviewer": "ana"}).json()
    assert following["item"]["id"] != shown["id"] and following["progress"]["rated"] == 1
    seen.append(json.dumps(following))
    errors = [
        (client.post("/api/rate", json={"reviewer": "ana", "item": "0" * 16, "choice": "left"}), 409, "reload"),
        (client.post("/api/rate", json={"reviewer": "ana", "item": shown["id"], "choice": "up"}), 400, "choice"),
        (
            client.post("/api/rate", json={"reviewer": "ana", "item": shown["id"], "choice": "left", "score_left": 9}),
            400,
            "score_left",
        ),  # fmt: skip
        (client.post("/api/rate", content=b"row=1", headers={"content-type": "text/plain"}), 415, "JSON"),
        (client.get("/api/next"), 400, "reviewer=NAME"),
        (client.get("/api/progress", params={"reviewer": "../x"}), 400, "reviewer name"),
        (client.get("/api/next", params={"reviewer": "ana"}, headers={"host": "evil.example"}), 403, "loopback"),
    ]
    for response, status, says in errors:
        assert response.status_code == status and says in response.json()["error"]["message"], response.text
        seen.append(response.text)
    for text in seen:
        assert not any(name in text for name in NAMES), text
    assert len(_lines(reviewer_file(run, "ana"))) == 1


def test_the_item_shows_a_conversation_turn_by_turn_and_the_passages_each_side_was_given(run):
    results = load_results(run / "results.json")
    state = create_review_app(run).state.review
    from adaptlab.reviews.app import item_view

    plan = state.plan("ana")
    talk = next(i for i in plan.items if i.row == 3)
    view = item_view(results, talk, 0)
    assert [t["text"] for t in view["turns"]] == [
        "question 0",
        "reply 0",
        "question 1",
        "reply 1",
        "question 2",
        "reply 2",
        "question 3",
    ]
    assert view["turn"] == 7 and view["reference"] == "reply 3" and view["passages"] is None
    asked = next(i for i in plan.items if i.row == 9 and "gamma_z" in (i.a, i.b))
    view = item_view(results, asked, 0)
    assert view["turns"] is None and view["passages"] is None  # gamma was given one passage more: shown per side
    gamma = "left" if (asked.a if asked.left == "a" else asked.b) == "gamma_z" else "right"
    assert len(view[gamma]["passages"]) == 2 and "score" not in view[gamma]["passages"][0]
    same = item_view(results, next(i for i in plan.items if i.row == 9 and "gamma_z" not in (i.a, i.b)), 0)
    assert same["passages"] == [{"source": "handbook.md", "text": "Passage for row 9."}]


def test_with_an_api_key_the_page_loads_but_every_api_call_needs_the_key(run):
    client = _client(run, api_key="s3cret")
    page = client.get("/", headers={"host": "review.example"})
    assert page.status_code == 200 and '"keyed": true' in page.text
    assert client.get("/api/next", params={"reviewer": "ana"}).status_code == 401
    wrong = client.get("/api/next", params={"reviewer": "ana"}, headers={"authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "API key" in wrong.json()["error"]["message"]
    right = client.get("/api/next", params={"reviewer": "ana"}, headers={"authorization": "Bearer s3cret"})
    assert right.status_code == 200 and right.json()["item"]


# ---- concurrency and durability --------------------------------------------------------------------------------


def test_two_reviewers_posting_at_once_lose_nothing(run):
    results = load_results(run / "results.json")
    tokens = {name: [i.token(0, review_secret(run)) for i in plan_for(results, name).items] for name in ("ana", "bob")}
    with serving(create_review_app(run)) as url, httpx.Client(base_url=url, timeout=30) as http:

        def post(job):
            name, token = job
            return http.post("/api/rate", json={"reviewer": name, "item": token, "choice": "tie"}).status_code

        jobs = [(name, t) for name in tokens for t in tokens[name]] * 2  # each item twice: 168 posts
        with ThreadPoolExecutor(12) as pool:
            codes = list(pool.map(post, jobs))
        progress = http.get("/api/progress", params={"reviewer": "bob"}).json()
    assert codes == [200] * len(jobs)
    for name in tokens:
        assert len(_lines(reviewer_file(run, name))) == 2 * len(tokens[name])  # whole lines, none lost
    assert progress["rated"] == len(tokens["bob"]) and progress["everyone"] == len(load_ratings(run)) == 2 * 42


def test_threads_appending_to_one_file_write_whole_lines(run):
    def rate(k):
        append_rating(run, Rating(row=k % ROWS, a="alpha_x", b="beta_y", preference="a", comment="x" * k))

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(rate, range(400)))
    assert sorted(len(r.comment or "") for r in read_reviewer_file(reviewer_file(run, "anonymous"))) == list(range(400))


def test_every_acknowledged_rating_survives_the_server_killed_with_sigkill(run):
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    env.pop("ADAPTLAB_API_KEY", None)
    command = [sys.executable, "-m", "adaptlab", "review", str(run), "--port", str(port)]
    proc = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        acknowledged = []
        for choice in ["left", "right", "tie", "both_bad"] * 3:
            item = httpx.get(f"{url}/api/next", params={"reviewer": "ana"}).json()["item"]
            body = {"reviewer": "ana", "item": item["id"], "choice": choice}
            assert httpx.post(f"{url}/api/rate", json=body).status_code == 200
            acknowledged.append(item["row"])
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert [r.row for r in read_reviewer_file(reviewer_file(run, "ana"))] == acknowledged


# ---- the page in Chromium --------------------------------------------------------------------------------------


def _rated(browser, n: int) -> None:
    """Wait until the page shows `n` rated and is ready for the next key."""
    from selenium.webdriver.support.ui import WebDriverWait

    def ready(driver):
        progress = driver.find_element("id", "progress").get_attribute("data-rated")
        return progress == str(n) and driver.find_element("tag name", "body").get_attribute("data-busy") != "1"

    WebDriverWait(browser, 10, poll_frequency=0.02).until(ready)


def test_chromium_rates_by_keyboard_resumes_after_a_reload_and_a_second_reviewer_loses_nothing(run):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    browser = chromium_browser()
    results = load_results(run / "results.json")
    bob = [i.token(0, review_secret(run)) for i in plan_for(results, "bob", salt=review_secret(run)).items[:20]]
    try:
        with serving(create_review_app(run)) as url:

            def second_reviewer():
                with httpx.Client(base_url=url, timeout=30) as http:
                    for k, token in enumerate(bob):
                        choice = ("left", "tie")[k % 2]
                        http.post("/api/rate", json={"reviewer": "bob", "item": token, "choice": choice})
                        time.sleep(0.02)

            browser.get(f"{url}/?reviewer=ana")
            _rated(browser, 0)
            text = browser.find_element("tag name", "body").text
            assert "Test row" in text and not any(name in text for name in NAMES)
            reference = browser.find_element("id", "reference")
            assert not reference.is_displayed()
            ActionChains(browser).send_keys("r").perform()
            assert reference.is_displayed() and browser.find_element("id", "reftext").text.startswith(
                ("Reference", "reply")
            )
            ActionChains(browser).send_keys("r").perform()
            assert not reference.is_displayed()
            other = threading.Thread(target=second_reviewer)
            other.start()
            keys = ["1", "2", "t", "x", Keys.ARROW_LEFT, Keys.ARROW_RIGHT, "1", "2", "t", "x"]
            shown = []
            for n, key in enumerate(keys, 1):
                shown.append(browser.find_element("id", "item").get_attribute("data-item"))
                ActionChains(browser).send_keys(key).perform()
                _rated(browser, n)
            browser.find_element("id", "comment").send_keys("t1x2")  # typed into the comment: no ratings
            browser.find_element("css selector", "#left .scores input[value='4']").click()
            browser.find_element("css selector", "button[data-choice=tie]").click()
            _rated(browser, 11)
            browser.refresh()
            _rated(browser, 11)
            assert (
                f"you: 11 rated of {3 * ROWS - len(IDENTICAL)} planned" in browser.find_element("id", "progress").text
            )
            assert browser.find_element("id", "item").get_attribute("data-item") not in shown
            for n, key in enumerate(["2", "1"], 12):
                ActionChains(browser).send_keys(key).perform()
                _rated(browser, n)
            other.join(timeout=30)
            assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
    finally:
        browser.quit()
    ana = _lines(reviewer_file(run, "ana"))
    assert [r["preference"] == r["left"] for r in ana[:2]] == [True, False]  # 1: the left one; 2: the right one
    assert [r["preference"] for r in ana[2:4]] == ["tie", "both_bad"]
    assert len(ana) == 13 and len({(r["row"], r["a"], r["b"]) for r in ana}) == 13
    assert ana[10]["comment"] == "t1x2" and ana[10][f"score_{ana[10]['left']}"] == 4
    plan = plan_for(results, "ana", salt=review_secret(run))
    assert [(r["row"], r["a"], r["b"], r["left"]) for r in ana] == [(i.row, i.a, i.b, i.left) for i in plan.items[:13]]
    assert len(_lines(reviewer_file(run, "bob"))) == len(bob)


def test_item_ids_and_sides_cannot_be_computed_from_the_contender_ids_and_survive_a_restart(run):
    """The run's review secret goes into every id and side: hashing the seed, row and contender ids does not give
    them, and a second server over the same folder shows the same ids."""
    first = _client(run).get("/api/next", params={"reviewer": "ana"}).json()["item"]["id"]
    plain = plan_for(load_results(run / "results.json"), "ana")
    assert first != plain.items[0].token(0) and first == plain.items[0].token(0, review_secret(run))
    assert _client(run).get("/api/next", params={"reviewer": "ana"}).json()["item"]["id"] == first
    assert len(review_secret(run)) == 32 and load_ratings(run) == []  # the secret is no reviewer's file
