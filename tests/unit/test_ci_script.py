"""CI runs the README's test command first, in a venv holding only what it installs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _readme_command(marker: str) -> str:
    lines = (ROOT / "README.md").read_text().splitlines()
    return lines[lines.index(f"<!-- {marker} -->") + 1].strip()


def test_the_readme_command_runs_first_in_a_fresh_venv() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    command = _readme_command("test-command")
    assert command.startswith("python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]'")
    run_readme = script.index('bash -c "$test_command"')
    made_fresh = re.search(r"^rm -rf \.venv\b", script, re.M)
    assert made_fresh and made_fresh.start() < run_readme  # nothing left from an earlier run
    # Nothing installs into .venv before the README command, and every other
    # install (extras, dev tools) happens after it, into another venv.
    before = script[:run_readme]
    assert not re.search(r"pip[\"']? install", before)
    after = script[run_readme:]
    assert re.search(r"\$TOOLS_VENV/bin/pip\" install -q -e '\.\[test,dev,bench[^'\]]*\]'", after)
    assert ".venv/bin/pip" not in after.replace("$TOOLS_VENV/bin/pip", "")


def test_a_pytest_run_that_collects_nothing_fails_ci() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    assert 'if [ "$1" -eq 5 ]; then echo "FAILED: $2 collected no tests"; exit 1; fi' in script
    assert script.count('pytest_ok "$status"') >= 2  # the README run and the embedded run
