"""Issue 14: the daemon attacked as a hostile local process would (bench.hostile, small sizes)."""
from __future__ import annotations

import pytest

from bench import hostile


def test_malformed_and_hostile_datagrams_never_break_the_daemon_or_its_session():
    result = hostile.fuzz(datagrams=400, seed=3)
    assert result["alive"], result
    assert result["internal_errors"] == 0, result
    assert result["session_sane"], result["session_check"]
    # every datagram was either refused at parse time or answered (none vanished unanswered)
    assert result["parse_errors"] + result["requests"] >= 400


def test_oversized_requests_are_refused_at_once_and_the_daemon_keeps_answering():
    for name, row in hostile.oversize().items():
        assert row["refused"] and row["status_after"], (name, row)


@pytest.mark.slow
def test_kill_9_loses_no_acknowledged_update_and_leaves_no_temp_file():
    result = hostile.kill9(kills=2, seed=5)
    assert result["acknowledged_updates"] > 0
    assert result["last_acknowledged_lost"] == 0 and result["temp_files_left"] == 0, result
    assert result["restarts_answering"] == 2
