"""Drill fixtures, and the figures every drill prints at the end of the run."""

from __future__ import annotations

from collections.abc import Callable

import pytest

_FIGURES: list[str] = []


@pytest.fixture
def figure(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Record one line of figures under the drill's name; printed in the run's summary."""
    name = request.node.name.removeprefix("test_")

    def record(line: str) -> None:
        _FIGURES.append(f"{name}: {line}")
        print(f"{name}: {line}")

    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _FIGURES:
        terminalreporter.section("vdata drills: figures")
        for line in _FIGURES:
            terminalreporter.write_line(line)
