"""Registering areas: names and classes are checked; unknown areas fail clearly."""

from __future__ import annotations

from typing import Any

import pytest

import vdata
from vdata.engine.areas import Areas


class Widgets(vdata.Repository):
    __slots__ = ()


class Holder:
    """A stand-in executor: Areas only needs somewhere to keep the instances."""

    def __init__(self) -> None:
        self.areas: Areas | None = None


def test_an_area_is_made_once_and_kept_as_an_attribute() -> None:
    areas = Areas({"widgets": Widgets}, reserved=frozenset())
    holder: Any = Holder()
    first = areas.instance(holder, "widgets")
    assert holder.widgets is first  # a plain attribute from now on
    assert isinstance(first, Widgets) and first.executor is holder
    assert areas.of_class(holder, Widgets) is first


@pytest.mark.parametrize("name", ["close", "transaction", "_private", "class", "not-a-name", ""])
def test_bad_or_taken_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="area name"):
        Areas({name: Widgets}, reserved=frozenset({"close", "transaction"}))


def test_only_repository_classes_can_be_areas() -> None:
    with pytest.raises(TypeError, match=r"vdata\.Repository subclass"):
        Areas({"widgets": object}, reserved=frozenset())  # type: ignore[dict-item]


def test_an_unknown_area_names_the_registered_ones() -> None:
    areas = Areas({"widgets": Widgets}, reserved=frozenset())
    with pytest.raises(AttributeError, match=r"'gadgets' \(areas: widgets\)"):
        areas.instance(Holder(), "gadgets")  # type: ignore[arg-type]
    with pytest.raises(LookupError, match="not a registered area"):
        areas.of_class(Holder(), vdata.Repository)  # type: ignore[arg-type]


def test_the_database_reserves_its_own_attribute_names() -> None:
    from vdata.engine.database import _RESERVED

    assert {"close", "transaction", "health", "area", "settings", "breaker"} <= _RESERVED
