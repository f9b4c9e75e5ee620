"""Shared fixtures."""
from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def rng():
    """A seeded generator so every test is reproducible."""
    return np.random.default_rng(20261122)


@pytest.fixture(scope="module")
def conductor():
    """A warm conductor without a language model (a test module may define its own)."""
    from stase.agent.conductor import Conductor
    c = Conductor(model="none")
    c.warm_up()
    return c
