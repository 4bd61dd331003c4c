"""The Docker engine and image the docker-provider tests run on, or why they cannot.

``image_or_skip()`` returns the image (``VDATA_TEST_IMAGE``, else the
default official image, pulled if missing). Where no engine answers or the
image cannot be had (no registry), the test skips saying how to run it
(``VDATA_TEST_IMAGE=$(.ci/docker-engine)``), unless the run forces the
docker provider (``VDATA_TEST_PROVIDER=docker``, as CI does): then it fails,
so the container path is never passed by skipping.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import pytest

from vdata.testing import providers

HOW = "run .ci/docker-engine and set VDATA_TEST_IMAGE to the image it prints"


def _unavailable(why: str) -> None:
    if os.environ.get(providers.ENV_PROVIDER, "").strip().lower() == "docker":
        pytest.fail(f"VDATA_TEST_PROVIDER=docker but {why}", pytrace=False)
    pytest.skip(f"docker provider not exercised: {why} ({HOW})")


@contextlib.contextmanager
def client() -> Iterator[Any]:
    """A Docker SDK client for the engine the provider finds, closed afterwards."""
    import docker

    os.environ.setdefault("DOCKER_HOST", providers.docker_host()[0])
    engine = docker.from_env()
    try:
        yield engine
    finally:
        engine.close()


def image_or_skip() -> str:
    """The image the docker provider will run; skip (or fail, if forced) without one."""
    if importlib_missing("testcontainers"):
        _unavailable("testcontainers is not installed (the test extra)")
    ok, why = providers.docker_engine()
    if not ok:
        _unavailable(why)
    image, _source = providers.docker_image()
    import docker.errors

    with client() as engine:
        try:
            engine.images.get(image)
        except docker.errors.ImageNotFound:
            try:
                engine.images.pull(image)
            except docker.errors.APIError as exc:
                _unavailable(f"image {image} is not here and cannot be pulled ({exc})")
    return image


def importlib_missing(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is None
