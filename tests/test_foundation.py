"""Conventions, plan validation, preset schema and the CLI shell."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from stase.core import conventions as cv
from stase.core.errors import InputError
from stase.core.plan import Plan, load_plan, plan_problems
from stase.presets.schema import Field, verify


def test_wrap_azimuth_range():
    a = cv.wrap_azimuth_deg(np.array([-180.0, 180.0, 190.0, -190.0, 360.0, 540.0]))
    np.testing.assert_allclose(a, [180.0, 180.0, -170.0, 170.0, 0.0, 180.0])


def test_left_is_positive_y():
    x, y, z = cv.spherical_to_cartesian(90.0, 0.0, 2.0)
    np.testing.assert_allclose([x, y, z], [0.0, 2.0, 0.0], atol=1e-12)
    az, el, r = cv.cartesian_to_spherical(0.0, -1.0, 0.0)
    assert (az, el, r) == pytest.approx((-90.0, 0.0, 1.0))


def test_stereo_pan_mapping():
    assert cv.azimuth_to_stereo_pan(90.0) == pytest.approx(-1.0)
    assert cv.azimuth_to_stereo_pan(-45.0) == pytest.approx(0.5)
    assert cv.azimuth_to_stereo_pan(135.0) == pytest.approx(-0.5)  # rear folds to front
    assert cv.stereo_pan_to_azimuth(cv.azimuth_to_stereo_pan(30.0)) == pytest.approx(30.0)


def test_great_circle():
    assert cv.great_circle_deg(0, 0, 180, 0) == pytest.approx(180.0)
    assert cv.great_circle_deg(10, 90, -170, 90) == pytest.approx(0.0, abs=1e-6)
    assert cv.great_circle_deg(30, 0, -30, 0) == pytest.approx(60.0)


def test_plan_round_trip(tmp_path):
    data = {"room": "jazz_club", "pathway": "description", "sources": [
        {"track": "Sax", "azimuth_deg": 200.0, "elevation_deg": 95, "distance_m": 3, "mode": "itd_ild"}]}
    plan = Plan.from_dict(data)
    assert plan.sources[0].azimuth_deg == pytest.approx(-160.0)
    assert plan.sources[0].elevation_deg == 90.0
    path = tmp_path / "p.json"
    path.write_text(plan.to_json())
    assert load_plan(path).to_dict() == plan.to_dict()


def test_plan_reports_every_problem():
    problems = plan_problems({"pathway": "x", "sources": [
        {"track": "", "azimuth_deg": float("nan")}, {"track": "A", "mode": "dolby", "distance_m": -1}]})
    text = "\n".join(problems)
    for needle in ("pathway", "sources[0].track", "sources[0].azimuth_deg", "sources[1].mode",
                   "sources[1].distance_m"):
        assert needle in text
    with pytest.raises(InputError):
        Plan.from_dict({"sources": "nope"})


def test_unreadable_plan_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="cannot parse"):
        load_plan(bad)
    with pytest.raises(InputError, match="not found"):
        load_plan(tmp_path / "missing.json")


def test_schema_reports_all_problems():
    schema = {"a": Field("number", required=True, minimum=0), "b": Field("str", required=True),
              "c": Field("list", items=Field("int"), max_items=2)}
    problems = verify({"a": -1, "c": [1, "x", 3], "d": 0}, schema, "f.yaml")
    assert len(problems) == 5, problems  # a below min, b missing, c[1] type, c too long, d unknown


def test_cli_help_lists_commands():
    out = subprocess.run([sys.executable, "-m", "stase.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for name in ("render", "plan", "demo", "advise", "serve", "listen"):
        assert name in out.stdout


def test_presets_verify_cli():
    out = subprocess.run([sys.executable, "-m", "stase.cli", "presets", "verify", "--json"],
                         capture_output=True, text=True)
    assert json.loads(out.stdout)["ok"], out.stdout


def test_plan_to_dict_has_every_field():
    """The hand-built to_dict (fast, no deep copy) must equal dataclasses.asdict."""
    from dataclasses import asdict
    plan = Plan.from_dict({"room": "church", "template": "choir", "music": {"bars": 8, "instruments": [
        {"track": "A", "role": "choir"}]}, "sources": [
        {"track": "A", "role": "choir", "azimuth_deg": 10, "provenance": {"azimuth_deg": "cue"}}]})
    assert plan.to_dict() == asdict(plan)
    plan.music = None
    expected = asdict(plan)
    del expected["music"]
    assert plan.to_dict() == expected
    copy = plan.to_dict()
    copy["sources"][0]["provenance"]["x"] = "y"
    assert "x" not in plan.sources[0].provenance  # a copy, not a view


def test_cli_survives_a_closed_pipe():
    """`stase presets list | head -0`: the reader leaves early; no traceback, exit 0."""
    proc = subprocess.Popen([sys.executable, "-m", "stase.cli", "presets", "list"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # nobody reads
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert b"Traceback" not in err
