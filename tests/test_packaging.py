"""Install metadata stays consistent: pyproject.toml, environment.yml, the CPU constraints, the toc."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import tomllib
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from book_toc import is_notebook, source_of, toc_entries  # noqa: E402

# conda-forge names that differ from the PyPI names
CONDA_TO_PYPI = {"pytorch": "torch"}


def _pyproject_requirements() -> dict[str, str]:
    """name -> specifier for the core dependencies and every extra (the self-referencing `all` aside)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    for extra, deps in project["optional-dependencies"].items():
        lines += [d for d in deps if canonicalize_name(Requirement(d).name) != canonicalize_name(project["name"])]
    requirements = {}
    for line in lines:
        req = Requirement(line)
        requirements[canonicalize_name(req.name)] = str(req.specifier)
    return requirements


def _environment_requirements() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    lines = []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            lines += [d for d in dep["pip"] if not d.startswith("-e ")]
        else:
            lines.append(dep)
    requirements = {}
    for line in lines:
        name, spec = re.match(r"^([A-Za-z0-9_.\-]+)\s*(.*)$", line).groups()
        name = CONDA_TO_PYPI.get(name, name)
        if name in ("python", "pip"):
            continue
        requirements[canonicalize_name(name)] = str(Requirement(f"x{spec}").specifier)
    return requirements


def _constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements/cpu-constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version
    return pins


def test_environment_yml_lists_the_same_packages_as_pyproject():
    assert _environment_requirements() == _pyproject_requirements()


def test_cpu_constraints_pin_every_dependency_within_its_range():
    pins = _constraints()
    for name, spec in _pyproject_requirements().items():
        assert name in pins, f"requirements/cpu-constraints.txt does not pin {name}"
        assert Requirement(f"{name}{spec}").specifier.contains(pins[name], prereleases=True), (name, spec, pins[name])


def test_cpu_constraints_pin_the_cpu_torch():
    # torch 2.13.0 is the CPU wheel this kind of machine provides; anything looser pulls CUDA.
    pins = _constraints()
    assert pins["torch"] == "2.13.0" and pins["torchvision"] == "0.28.0"


def test_every_toc_entry_has_a_source_and_every_chapter_is_listed():
    listed = {source_of(entry).resolve() for entry in toc_entries()}
    chapters = {p.resolve() for p in (ROOT / "book").rglob("*.md") if "_vendor" not in p.parts}
    assert chapters - listed == set(), "chapters missing from _toc.yml"
    assert any(is_notebook(path) for path in listed), "the book has no executable chapter"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci/run").read_text()
    assert "make test" in readme and re.search(r"^make test$", ci, re.M)
