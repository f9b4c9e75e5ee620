"""Shared fixtures."""
from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def rng():
    """A seeded generator so every test is reproducible."""
    return np.random.default_rng(20261122)
