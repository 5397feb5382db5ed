"""What a user gets from PyPI: the wheel and sdist, their metadata, the version,
``python -m modelboard``, an editable install mypy can follow, and the hint for a
missing extra under pipx."""

from __future__ import annotations

import email
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

from modelboard.core import __version__

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
#: What a distribution is built from (the rest of the checkout is not packaged).
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "core", "tui")


def copy_project(destination: Path) -> Path:
    """A copy of the packaged part of the checkout, so builds leave the checkout alone."""
    destination.mkdir()
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, destination / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, destination / name)
    return destination


def run(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None,
        timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(arg) for arg in args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def distributions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The wheel and the sdist, built as a release would build them."""
    work = tmp_path_factory.mktemp("build")
    project = copy_project(work / "project")
    built = run(sys.executable, "-m", "build", "--no-isolation", "--outdir", work / "dist",
                project)
    assert built.returncode == 0, built.stderr + built.stdout
    (wheel,) = (work / "dist").glob("*.whl")
    (sdist,) = (work / "dist").glob("*.tar.gz")
    return wheel, sdist


def packaged_names() -> set[str]:
    """Where each source file of core/ and tui/ must land in the wheel."""
    names = {"modelboard/__main__.py"}
    mapped = {"_toplevel": None, "integrations": "modelboard/integrations"}  # own packages
    for folder, package in (("core", "modelboard/core"), ("tui", "modelboard/tui")):
        for path in (ROOT / folder).rglob("*"):
            relative = path.relative_to(ROOT / folder)
            if not path.is_file() or "__pycache__" in relative.parts:
                continue
            if relative.parts[0] in mapped:
                target = mapped[relative.parts[0]]
                if target is not None:
                    names.add(f"{target}/{Path(*relative.parts[1:]).as_posix()}")
            else:
                names.add(f"{package}/{relative.as_posix()}")
    return names


@pytest.mark.slow
def test_the_wheel_holds_every_module_both_markers_and_the_license(
        distributions: tuple[Path, Path]) -> None:
    wheel, _sdist = distributions
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = email.message_from_bytes(
            archive.read(f"modelboard-{__version__}.dist-info/METADATA"))
        license_text = archive.read(f"modelboard-{__version__}.dist-info/licenses/LICENSE")

    missing = packaged_names() - names
    assert not missing, f"listed in pyproject's packages? {sorted(missing)}"
    assert {"modelboard/core/py.typed", "modelboard/tui/py.typed",
            "modelboard/core/cli/schema.json"} <= names  # the --json schema, documented
    assert license_text.startswith(b"MIT License")
    assert metadata["License-Expression"] == "MIT"
    assert metadata["Version"] == PYPROJECT["project"]["version"] == __version__
    assert metadata["Author"]
    urls = dict(value.split(", ", 1) for value in metadata.get_all("Project-URL"))
    assert {"Homepage", "Source", "Issues"} <= set(urls)
    assert all(url.startswith("https://") for url in urls.values())
    classifiers = metadata.get_all("Classifier")
    assert "Typing :: Typed" in classifiers
    assert "Programming Language :: Python :: 3.11" in classifiers
    assert metadata["Provides-Extra"]  # tui, redis …


@pytest.mark.slow
def test_the_sdist_ships_the_license_and_builds_with_a_recent_setuptools(
        distributions: tuple[Path, Path]) -> None:
    _wheel, sdist = distributions
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}

    assert {"LICENSE", "README.md", "pyproject.toml", "core/_toplevel/__main__.py",
            "tui/py.typed", "core/cli/schema.json"} <= names
    # ``license = "MIT"`` (an SPDX expression) needs setuptools 77 or newer.
    assert "setuptools>=77" in PYPROJECT["build-system"]["requires"]


def test_the_readme_images_are_absolute_so_pypi_shows_them() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    images = [line for line in readme.splitlines() if line.startswith("![")]
    assert images
    for line in images:
        assert "](https://" in line, line


def test_python_dash_m_modelboard_is_the_command(tmp_path: Path) -> None:
    version = run(sys.executable, "-m", "modelboard", "--version", cwd=tmp_path)
    catalog = run(sys.executable, "-m", "modelboard", "catalog", "openai", cwd=tmp_path)

    assert (version.returncode, version.stdout) == (0, f"modelboard {__version__}\n")
    assert catalog.returncode == 0, catalog.stderr
    assert "gpt-4o" in catalog.stdout


_PUBLIC_NAMES = """
import json, sys
import modelboard.core as core
loaded = sorted(name for name in sys.modules if name.startswith("modelboard.core."))
names = {name: type(getattr(core, name)).__name__ for name in core.__all__}
namespace = {}
exec("from modelboard.core import *", namespace)
print(json.dumps({"loaded": loaded, "names": names, "star": sorted(set(namespace) - {"__builtins__"}),
                  "listed": sorted(set(core.__all__) - set(dir(core)))}))
"""


def test_the_core_loads_each_public_name_on_first_use_and_has_them_all(tmp_path: Path) -> None:
    done = run(sys.executable, "-c", _PUBLIC_NAMES, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    import modelboard.core as core

    assert found["loaded"] == []  # ``import modelboard.core`` alone loads none of its modules
    assert set(found["names"]) == set(core.__all__) and "NoneType" not in found["names"].values()
    assert found["names"]["SelectionStore"] == found["names"]["ValidationError"] == "type"
    assert found["names"]["__version__"] == "str" and found["names"]["open_store"] == "function"
    assert found["star"] == sorted(core.__all__) and found["listed"] == []


@pytest.mark.slow
def test_mypy_follows_an_editable_install_of_both_packages(tmp_path: Path) -> None:
    """As a proxy author would: their own code, modelboard installed with ``-e``."""
    project = copy_project(tmp_path / "project")
    venv = tmp_path / "venv"
    assert run(sys.executable, "-m", "venv", "--without-pip", venv).returncode == 0
    python = venv / "bin" / "python"
    # The new virtualenv borrows this one's pip, setuptools and dependencies.
    purelib = subprocess.check_output([python, "-c", "import sysconfig; "
                                       "print(sysconfig.get_paths()['purelib'])"], text=True)
    outer = [path for path in sys.path if path.endswith("site-packages")]
    Path(purelib.strip(), "outer.pth").write_text("\n".join(outer) + "\n")
    installed = run(python, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
                    "--config-settings", "editable_mode=strict", "-e", project)
    assert installed.returncode == 0, installed.stderr
    user_code = tmp_path / "proxy" / "route.py"
    user_code.parent.mkdir()
    user_code.write_text("from modelboard.core import open_store\n"
                         "from modelboard.tui import run_editor\n"
                         "store: int = open_store()\n"
                         "code: str = run_editor(None)\n")

    checked = run(sys.executable, "-m", "mypy", "--strict", "--no-incremental",
                  "--python-executable", python, user_code, cwd=user_code.parent)

    # Both imports resolve to typed code: the only errors are the two deliberate ones.
    assert "import-not-found" not in checked.stdout and "import-untyped" not in checked.stdout
    assert 'has type "SelectionStore", variable has type "int"' in checked.stdout
    assert 'has type "int", variable has type "str"' in checked.stdout
    assert "Found 2 errors" in checked.stdout, checked.stdout


@pytest.mark.slow
def test_under_pipx_the_missing_editor_hint_names_pipx(tmp_path: Path) -> None:
    """A real ``pipx install`` of the core alone, then ``modelboard``."""
    if shutil.which("pipx", path=str(Path(sys.executable).parent)) is None:
        pytest.fail("pipx is in the dev extra: pip install -e '.[dev]'")
    project = copy_project(tmp_path / "project")
    env = {**os.environ, "PIPX_HOME": str(tmp_path / "pipx"),
           "PIPX_BIN_DIR": str(tmp_path / "bin"), "PIPX_MAN_DIR": str(tmp_path / "man")}
    installed = run(Path(sys.executable).parent / "pipx", "install", project, env=env,
                    timeout=600)
    assert installed.returncode == 0, installed.stderr + installed.stdout

    opened = run(tmp_path / "bin" / "modelboard", "--file", tmp_path / "m.json", env=env,
                 cwd=tmp_path)

    assert opened.returncode == 2
    assert opened.stderr == ("modelboard: the editor needs Textual: "
                             "pipx install --force 'modelboard[tui]'\n")
