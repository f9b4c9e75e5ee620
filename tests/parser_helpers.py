"""What the parser rounds' test files share (issue 16): an edit made after a setup prompt (their
``conductor`` fixture is tests/conftest.py's).

    from parser_helpers import edit_after   # tests/ is on sys.path under pytest
"""
from __future__ import annotations


def edit_after(conductor, setup: str, words: str, tracks: list[str]):
    """``(plan of setup, that plan edited by words)``."""
    before = conductor.plan(setup, tracks)
    return before, conductor.edit(words, before)
