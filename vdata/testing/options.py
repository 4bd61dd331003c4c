"""The plugin's options for a service: its migrations and its repositories.

Each is an ini option (``pytest.ini``, ``[tool.pytest.ini_options]``) and a
command-line option; the command line wins.

* ``vdata_migrations`` / ``--vdata-migrations DIR`` (repeatable): folders of
  migrations applied to the template database after the bundled ones, in
  the order given. Ini paths are relative to the ini file, command-line
  paths to the directory pytest was started in.
* ``vdata_bundled`` / ``--vdata-bundled`` / ``--no-vdata-bundled``: whether
  the template gets vdata's bundled migrations and ``vdata_db``/``vdata_tx``
  vdata's bundled areas (``users`` ... ``tasks``); default true.
* ``vdata_areas`` / ``--vdata-areas MODULE:ATTRIBUTE``: a mapping of area
  name to ``vdata.Repository`` subclass, registered on ``vdata_db`` and
  ``vdata_tx`` (``vdata_db.<name>``). The ``vdata_areas`` fixture returns it;
  a conftest may override that fixture instead.
* ``vdata_image`` (ini only): the image the ``docker`` provider runs, for a
  service that needs another PostgreSQL (a version, PostGIS...);
  ``VDATA_TEST_IMAGE`` wins over it, and it defaults to the official image
  (``vdata.testing.providers.DEFAULT_IMAGE``).
"""

from __future__ import annotations

__all__ = ["ServiceOptions", "add_options", "load_areas", "service_options"]

import argparse
import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


@dataclass(frozen=True, slots=True)
class ServiceOptions:
    """What the options say about the service under test."""

    migrations: tuple[Path, ...]
    bundled: bool
    areas: str | None  # "module:attribute", or None
    image: str | None = None  # the docker provider's image, or None (the default)


def add_options(parser: pytest.Parser) -> None:
    """Declare the ini and command-line options (from ``pytest_addoption``)."""
    group = parser.getgroup("vdata", "vdata: a real PostgreSQL for the tests")
    group.addoption(
        "--vdata-migrations",
        action="append",
        default=[],
        metavar="DIR",
        help="a folder of the service's migrations for the template database (repeatable; "
        "replaces the ini option vdata_migrations)",
    )
    group.addoption(
        "--vdata-bundled",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="apply vdata's bundled migrations and register its bundled areas "
        "(default: the ini option vdata_bundled, true)",
    )
    group.addoption(
        "--vdata-areas",
        default=None,
        metavar="MODULE:ATTRIBUTE",
        help="a mapping of area name to Repository class, registered on vdata_db and "
        "vdata_tx (replaces the ini option vdata_areas)",
    )
    parser.addini(
        "vdata_migrations",
        type="paths",
        default=[],
        help="folders of the service's migrations, applied to the template after the "
        "bundled ones (relative to the ini file)",
    )
    parser.addini(
        "vdata_bundled",
        type="bool",
        default=True,
        help="apply vdata's bundled migrations and register its bundled areas",
    )
    parser.addini(
        "vdata_areas",
        type="string",
        default="",
        help="MODULE:ATTRIBUTE naming a mapping of area name to Repository class",
    )
    parser.addini(
        "vdata_image",
        type="string",
        default="",
        help="the Docker image of the docker provider (VDATA_TEST_IMAGE wins over it)",
    )


def service_options(config: pytest.Config) -> ServiceOptions:
    """Return the options in effect; raise UsageError for a folder that does not exist."""
    given: list[str] = config.getoption("vdata_migrations") or []
    if given:
        base = config.invocation_params.dir
        folders = tuple((base / p).resolve() for p in given)
    else:
        folders = tuple(Path(p) for p in config.getini("vdata_migrations"))
    for folder in folders:
        if not folder.is_dir():
            raise pytest.UsageError(f"vdata_migrations: {folder} is not a folder of migrations")
    bundled = config.getoption("vdata_bundled")
    if bundled is None:
        bundled = bool(config.getini("vdata_bundled"))
    areas = config.getoption("vdata_areas") or str(config.getini("vdata_areas")).strip() or None
    image = str(config.getini("vdata_image")).strip() or None
    return ServiceOptions(migrations=folders, bundled=bool(bundled), areas=areas, image=image)


def load_areas(spec: str) -> Mapping[str, Any]:
    """Import ``module:attribute`` and return the mapping it names; fail the test if it cannot."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        pytest.fail(
            f"vdata_areas = {spec!r}: write MODULE:ATTRIBUTE, e.g. myapp.repositories:AREAS",
            pytrace=False,
        )
    try:
        value = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        pytest.fail(f"vdata_areas = {spec!r}: {type(exc).__name__}: {exc}", pytrace=False)
    if not isinstance(value, Mapping):
        pytest.fail(
            f"vdata_areas = {spec!r} is a {type(value).__name__}, not a mapping of area name "
            "to Repository class",
            pytrace=False,
        )
    return value
