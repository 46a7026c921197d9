"""Every ``>>>`` example in clockwork/, operations/ and facts/ runs, as doctest, and shows what it returns.

An example that needs a host, a network or a project's files is a ``.. code:: python``
block instead (as pyinfra's docstrings show theirs), which is not run. The examples run
in an empty temporary directory, so that one that writes a file writes it there.

operations/ and facts/ are installed as ``clockwork.operations`` and ``clockwork.facts``
(setup.cfg's package_dir), so each module is imported by its installed name, the way a
deploy imports it, rather than collected with ``pytest --doctest-modules`` as a second
top-level copy.
"""

from __future__ import annotations

import doctest
import importlib
import io
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = {"clockwork": "clockwork", "operations": "clockwork.operations", "facts": "clockwork.facts"}
FLAGS = doctest.ELLIPSIS


def _modules() -> dict[str, Path]:
    """Installed module name → source file, for every module of the library."""
    modules = {}
    for folder, package in PACKAGES.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            parts = path.relative_to(REPO / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join((package, *parts))] = path
    return modules


MODULES = _modules()


def _doctests(name: str) -> list[doctest.DocTest]:
    return [test for test in doctest.DocTestFinder().find(importlib.import_module(name), name) if test.examples]


@pytest.mark.parametrize("name", sorted(MODULES))
def test_examples_run(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report = io.StringIO()
    for test in _doctests(name):
        runner.run(test, out=report.write)
    assert runner.failures == 0, report.getvalue()


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_prompt_is_an_example_that_runs(name: str) -> None:
    """A ``>>>`` that doctest does not find (in a comment, a plain string, the docstring of a decorated
    function whose wrapper lives in another module) would never run: each one in the file must be found."""
    prompts = sum(line.lstrip().startswith(">>>") for line in MODULES[name].read_text().splitlines())
    assert sum(len(test.examples) for test in _doctests(name)) == prompts
