"""The Ardour adapter against a real headless Ardour (ardour7-lua, Dummy backend, OSC surface on).

If the host cannot start, the test fails with Ardour's own reason (tests/ardour_host.py).
"""
from __future__ import annotations

import time

import pytest

from stase.bridge.client import request
from stase.bridge.daemon import Daemon, DaemonConfig
from stase.core.conventions import azimuth_to_stereo_pan
from ardour_host import ardour_session  # tests/ is on sys.path under pytest (no __init__.py)

pytestmark = [pytest.mark.ardour, pytest.mark.slow]
TRACKS = ["Vox", "Gtr L", "Bass"]


def wait_for(predicate, timeout_s=8.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_daemon_mirrors_ardour_tracks_applies_a_plan_and_survives_a_restart(tmp_path):
    with ardour_session(TRACKS) as host:
        d = Daemon(DaemonConfig(port=0, daw="ardour", daw_port=host.osc_port,
                                session=str(tmp_path / "s.json"), durable_saves=False))
        d.start()
        try:
            assert wait_for(lambda: d.session.track_names() == TRACKS), d.session.track_names()
            assert [t["daw_id"] for t in d.session.tracks] == [1, 2, 3]  # Ardour's ssids
            plan = {"room": "dry_studio", "sources": [
                {"track": "Vox", "azimuth_deg": 0, "gain_db": -1.5},
                {"track": "Gtr L", "azimuth_deg": 60, "gain_db": -6.0, "mode": "itd_ild"},
                {"track": "Bass", "azimuth_deg": -30, "gain_db": 2.0}]}
            r = request("apply", {"plan": plan}, port=d.port, timeout_s=5)
            assert r["ok"] and sorted(r["result"]["applied"]) == sorted(TRACKS)
            fb = d.adapter.feedback
            for src in plan["sources"]:
                ssid = TRACKS.index(src["track"]) + 1
                pan = azimuth_to_stereo_pan(src["azimuth_deg"])
                assert wait_for(lambda: fb[ssid].get("gain_db") == pytest.approx(src["gain_db"], abs=0.01)
                                and fb[ssid].get("pan") == pytest.approx(pan, abs=0.01)), fb[ssid]
            # Gtr L at 60 degrees left: stereo pan -sin(60)... linear in lateral angle: -60/90
            assert fb[2]["pan_position"] == pytest.approx((1 - 60 / 90) / 2, abs=0.005)

            # Ardour goes away and comes back: the adapter registers again by itself
            registrations = d.adapter.registrations
            host.stop()
            assert wait_for(lambda: not d.adapter.connected, timeout_s=10)
            host.start()
            assert wait_for(lambda: d.adapter.connected and d.adapter.registrations > registrations
                            and d.adapter.list_complete.is_set(), timeout_s=15), d.adapter.status()
            assert wait_for(lambda: [t["name"] for t in d.adapter.tracks()] == TRACKS)
            r = request("set_source", {"track": "Bass", "gain_db": -9.0}, port=d.port, timeout_s=5)
            assert r["ok"]
            assert wait_for(lambda: d.adapter.feedback[3].get("gain_db") == pytest.approx(-9.0, abs=0.01))
        finally:
            d.stop()
