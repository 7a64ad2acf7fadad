"""Shared fixtures. The suite tests the installed package: run it with the interpreter of
a virtualenv that has the wheel installed, from outside the source tree (make test-python
does both)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

import presence_engine

# "default" runs in make test-python; HYPOTHESIS_PROFILE=long for a deeper search.
settings.register_profile(
    "default",
    deadline=None,
    max_examples=150,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "long",
    deadline=None,
    database=None,
    max_examples=2000,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(params=["counts", "phoenix"])
def fmt(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def engine(fmt: str) -> Iterator[presence_engine.Engine]:
    """An engine of each format."""
    with presence_engine.Engine(format=fmt) as e:
        yield e


@pytest.fixture
def counts_engine() -> Iterator[presence_engine.Engine]:
    with presence_engine.Engine() as e:
        yield e


@pytest.fixture
def phoenix_engine() -> Iterator[presence_engine.Engine]:
    with presence_engine.Engine(format="phoenix") as e:
        yield e
