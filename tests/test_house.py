"""The house's habits, as tests: ruff formats and lints the tree, mypy type-checks src (pyproject.toml holds all
three configurations; .pre-commit-config.yaml runs the same checks before a commit)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]
BIN = Path(sys.executable).parent


def run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / command[0]), *command[1:]], cwd=ROOT, capture_output=True, text=True)


def test_ruff_finds_nothing_to_lint():
    done = run("ruff", "check", "--no-cache", ".")
    assert done.returncode == 0, f"ruff check found problems (fix them, or `ruff check --fix .`):\n{done.stdout}"


def test_the_tree_is_formatted():
    done = run("ruff", "format", "--check", "--no-cache", ".")
    assert done.returncode == 0, f"files not formatted (run `ruff format .`):\n{done.stdout}"


def test_mypy_finds_no_type_error_in_src():
    done = run("mypy")
    assert done.returncode == 0, f"mypy found type errors in src:\n{done.stdout}"


def test_pre_commit_runs_the_same_checks():
    config = (ROOT / ".pre-commit-config.yaml").read_text(encoding="utf-8")
    assert all(hook in config for hook in ("ruff-check", "ruff-format", "mypy"))
