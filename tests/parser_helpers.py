"""What the parser rounds' test files share (issue 16): an edit made after a setup prompt (their
``conductor`` fixture is tests/conftest.py's).

    from parser_helpers import edit_after   # tests/ is on sys.path under pytest
"""
from __future__ import annotations


def edit_after(conductor, setup: str, words: str, tracks: list[str]):
    """``(plan of setup, that plan edited by words)``."""
    before = conductor.plan(setup, tracks)
    return before, conductor.edit(words, before)


def assert_edit_effect(conductor, setup: str, tracks: list[str], words: str, track: str, field: str, want: float):
    """The plan of ``setup`` edited by ``words`` puts ``track``'s ``field`` at ``want`` (within
    0.05 m, 0.5 dB or 1 degree)."""
    import pytest
    _, after = edit_after(conductor, setup, words, tracks)
    tolerance = 0.05 if field == "distance_m" else 0.5 if field == "gain_db" else 1.0
    assert getattr(after.source(track), field) == pytest.approx(want, abs=tolerance), words
