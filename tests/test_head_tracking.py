"""Issue 20: head tracking turns the live scene (not the plan), over OSC, smoothly.

* Closed forms: the head rotation ``Rz(yaw) Ry(-pitch) Rx(roll)`` equals SciPy's intrinsic
  Z-Y-X Euler rotation, the quaternion path equals the yaw-pitch-roll path (SciPy's quaternion of
  the same rotation), yaw = 90 maps azimuth 0 to -90 (head turns left, the front source goes to
  the right ear), pitch = 30 puts a frontal source 30 degrees below (and the zenith 30 degrees towards the front), roll = 30 lowers a source
  on the left by 30 degrees; head-relative directions match SciPy's inverse rotation.
* Parsing: every accepted address, and each malformed kind (unknown address, wrong arity,
  a string or bool, NaN/Inf, out of range, a zero quaternion) counted by reason and ignored;
  garbage datagrams over UDP leave the server running.
* Throttle: many messages between two blocks give one batch, carrying the latest orientation.
* Audio: a frontal source (itd_ild: Woodworth ITD, Brown-Duda shadow), ``/ypr 90 0 0`` sent over
  UDP while the monitor's callback runs: the block after the batch already leans right, and from
  the 6th block on (itd_ild; the 7th in hrtf mode: 1 block to apply, the 20 ms ramp = 4 blocks of
  256 at 48 kHz, the filters' last crossfade) the output is bit for bit a source placed at -90
  from the start (ITD = -31.5 samples, Woodworth), with no step on the way.
* Daemon: ``--head-tracking PORT`` opens the port, ``status`` shows ``head_tracking``, the plan
  and the session keep the world direction while the monitor renders the head-relative one.
"""
from __future__ import annotations

import argparse
import math
import socket
import time

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from stase.bridge.head_tracking import (HeadTracker, head_relative, quaternion_to_rotation,
                                        rotation_to_ypr, ypr_to_rotation)
from stase.bridge.monitor import LiveMonitor
from stase.bridge.osc_transport import build_message
from stase.core.conventions import HEAD_RADIUS_M, SPEED_OF_SOUND_M_S
from stase.core.errors import InputError

RATE, BLOCK = 48_000, 256


def wait_for(predicate, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.002)
    return predicate()


def send(port: int, address: str, *args) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(build_message(address, list(args)), ("127.0.0.1", port))


def send_raw(port: int, data: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(data, ("127.0.0.1", port))


# ------------------------------------------------------------------ closed forms
def test_ypr_rotation_is_scipys_intrinsic_zyx_and_quaternions_agree(rng):
    for yaw, pitch, roll in rng.uniform([-180, -89, -180], [180, 89, 180], size=(50, 3)):
        ours = ypr_to_rotation(yaw, pitch, roll)
        reference = Rotation.from_euler("ZYX", [yaw, -pitch, roll], degrees=True)
        np.testing.assert_allclose(ours, reference.as_matrix(), atol=1e-12)
        x, y, z, w = reference.as_quat()  # SciPy: scalar last
        np.testing.assert_allclose(quaternion_to_rotation(w, x, y, z), ours, atol=1e-12)
        np.testing.assert_allclose(quaternion_to_rotation(-2 * w, -2 * x, -2 * y, -2 * z), ours,
                                   atol=1e-12)  # q and -q, any norm: the same rotation
        np.testing.assert_allclose(rotation_to_ypr(ours), (yaw, pitch, roll), atol=1e-9)
        np.testing.assert_allclose(ours @ ours.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(ours) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("ypr, before, after", [
    ((90, 0, 0), (0, 0), (-90, 0)),      # head turns left: the front source is on the right
    ((-90, 0, 0), (0, 0), (90, 0)),
    ((90, 0, 0), (90, 0), (0, 0)),       # the source on the left is now in front
    ((30, 0, 0), (180, 0), (150, 0)),
    ((0, 30, 0), (0, 0), (0, -30)),      # nose up: the front source is below
    ((0, 30, 0), (0, 90), (0, 60)),      # looking up brings the zenith towards the front
    ((0, 0, 30), (90, 0), (90, -30)),    # left ear up: a source level on the left is below it
    ((0, 0, 30), (-90, 0), (-90, 30)),
    ((0, 0, 30), (0, 0), (0, 0)),        # roll leaves the front alone
    ((90, 30, 0), (0, 0), (-90, 0)),     # pitch turns about the ears: a source on them stays
])
def test_head_relative_closed_forms(ypr, before, after):
    az, el = head_relative(ypr_to_rotation(*ypr), before[0], before[1])
    assert (float(az), float(el)) == pytest.approx(after, abs=1e-9)


def test_head_relative_is_the_inverse_rotation_of_the_plan_direction(rng):
    rotation = Rotation.from_euler("ZYX", rng.uniform(-180, 180, 3), degrees=True)
    az = rng.uniform(-180, 180, 200)
    el = np.degrees(np.arcsin(rng.uniform(-1, 1, 200)))
    rel_az, rel_el = head_relative(rotation.as_matrix(), az, el)
    world = np.stack([np.cos(np.radians(el)) * np.cos(np.radians(az)),
                      np.cos(np.radians(el)) * np.sin(np.radians(az)), np.sin(np.radians(el))], -1)
    head = rotation.inv().apply(world)
    np.testing.assert_allclose(rel_el, np.degrees(np.arcsin(head[:, 2])), atol=1e-9)
    np.testing.assert_allclose(np.cos(np.radians(rel_az - np.degrees(np.arctan2(head[:, 1], head[:, 0])))),
                               1.0, atol=1e-12)
    assert np.all((rel_az > -180) & (rel_az <= 180))
    same_az, same_el = head_relative(None, az, el)
    np.testing.assert_array_equal(same_az, az)
    np.testing.assert_array_equal(same_el, el)


# ------------------------------------------------------------------ parsing
class _Target:
    """A stand-in monitor: counts rendered blocks and records the rotations it is given."""

    def __init__(self):
        self.blocks = 0
        self.rotations = []

    def set_head_rotation(self, rotation):
        self.rotations.append(rotation)
        return True


def test_every_address_sets_the_orientation_and_malformed_ones_are_counted_and_ignored():
    tracker = HeadTracker(lambda: None)
    try:
        assert tracker.handle("/ypr", [10, 20.0, -30.0])
        assert tracker.status()["last_ypr_deg"] == [10.0, 20.0, -30.0]
        assert tracker.handle("/yaw", [45.0]) and tracker.handle("/roll", [5])
        assert tracker.status()["last_ypr_deg"] == [45.0, 20.0, 5.0]
        assert tracker.handle("/pitch", [-10.0])
        np.testing.assert_allclose(tracker.rotation, ypr_to_rotation(45, -10, 5), atol=1e-12)
        assert tracker.handle("/adm/lis/ypr", [-90.0, 0.0, 0.0])
        np.testing.assert_allclose(tracker.rotation, ypr_to_rotation(-90, 0, 0), atol=1e-12)
        x, y, z, w = Rotation.from_euler("ZYX", [30, -15, 10], degrees=True).as_quat()
        assert tracker.handle("/quaternion", [w, x, y, z])
        np.testing.assert_allclose(tracker.status()["last_ypr_deg"], [30, 15, 10], atol=1e-3)
        assert tracker.handle("/ypr", [0, 0, 0]) and tracker.rotation is None  # facing front
        good = tracker.status()
        for address, args, reason in [
                ("/ypr", [1.0, 2.0], "arity"), ("/yaw", [], "arity"), ("/quaternion", [1, 0, 0], "arity"),
                ("/ypr", ["90", 0, 0], "not_a_number"), ("/yaw", [True], "not_a_number"),
                ("/ypr", [math.nan, 0, 0], "not_finite"), ("/roll", [math.inf], "not_finite"),
                ("/ypr", [400.0, 0, 0], "out_of_range"), ("/quaternion", [0, 0, 0, 0], "out_of_range"),
                ("/quaternion", [10, 0, 0, 0], "out_of_range"), ("/xyz", [1, 2, 3], "unknown_address")]:
            before = tracker.status()["malformed_by_reason"][reason]
            assert not tracker.handle(address, args)
            assert tracker.status()["malformed_by_reason"][reason] == before + 1, (address, args)
        bad = tracker.status()
        assert bad["malformed"] == 11 and bad["accepted"] == good["accepted"]
        assert bad["last_ypr_deg"] == good["last_ypr_deg"] and tracker.rotation is None
    finally:
        tracker.close()


def test_udp_garbage_and_malformed_messages_leave_the_tracker_running():
    target = _Target()
    tracker = HeadTracker(lambda: target).start()
    try:
        send_raw(tracker.port, b"\x00\x01garbage")
        send_raw(tracker.port, b"/ypr\x00\x00\x00\x00,fff\x00\x00\x00\x00\x01")  # truncated args
        send(tracker.port, "/ypr", math.nan, 0.0, 0.0)
        send(tracker.port, "/ypr", 1.0)
        send(tracker.port, "/ypr", 90.0, 0.0, 0.0)
        assert wait_for(lambda: target.rotations)
        status = tracker.status()
        assert status["malformed_by_reason"]["unparseable"] == 2
        assert status["malformed_by_reason"]["not_finite"] == 1
        assert status["malformed_by_reason"]["arity"] == 1
        assert status["malformed"] == 4 and status["accepted"] == 1
        np.testing.assert_allclose(target.rotations[-1], ypr_to_rotation(90, 0, 0), atol=1e-12)
        assert status["last_ypr_deg"] == [90.0, 0.0, 0.0] and status["batches"] == 1
    finally:
        tracker.close()


def test_messages_between_two_blocks_are_coalesced_into_one_batch_with_the_latest():
    target = _Target()
    tracker = HeadTracker(lambda: target).start()
    try:
        send(tracker.port, "/yaw", 1.0)
        assert wait_for(lambda: len(target.rotations) == 1)
        for yaw in range(2, 102):                  # 100 messages, no block rendered meanwhile
            send(tracker.port, "/yaw", float(yaw))
        assert wait_for(lambda: tracker.status()["accepted"] == 101)
        time.sleep(0.05)                           # the delivery thread has had time to act
        assert len(target.rotations) == 1          # no second batch before a block is rendered
        target.blocks += 1
        assert wait_for(lambda: len(target.rotations) == 2)
        np.testing.assert_allclose(target.rotations[1], ypr_to_rotation(101, 0, 0), atol=1e-12)
        target.blocks += 1
        time.sleep(0.05)
        assert len(target.rotations) == 2          # nothing new: no batch
        assert tracker.status()["batches"] == 2
    finally:
        tracker.close()


# ------------------------------------------------------------------ the monitor's control side
def test_the_monitor_turns_every_source_and_rotates_later_moves_but_keeps_the_plan_direction():
    monitor = LiveMonitor(["A", "B"], {"A": {"azimuth_deg": 30.0, "mode": "pan"},
                                       "B": {"azimuth_deg": -120.0, "elevation_deg": 10.0, "mode": "pan"}},
                          sample_rate=RATE, block_size=BLOCK, room=None)
    assert monitor.set_head_rotation(ypr_to_rotation(90, 0, 0))
    assert monitor.renderer.source("A")["azimuth_deg"] == pytest.approx(-60.0)
    assert monitor.renderer.source("B")["azimuth_deg"] == pytest.approx(150.0)
    assert monitor.renderer.source("B")["elevation_deg"] == pytest.approx(10.0)
    assert monitor.set_source("A", azimuth_deg=0.0, gain_db=-3.0)   # a plan move, rotated
    assert monitor.renderer.source("A")["azimuth_deg"] == pytest.approx(-90.0)
    assert monitor.set_source("B", gain_db=-6.0)                    # no move: direction kept
    assert monitor.renderer.source("B")["azimuth_deg"] == pytest.approx(150.0)
    assert monitor.set_head_rotation(None)                          # facing front again: exact
    assert monitor.renderer.source("A")["azimuth_deg"] == 0.0
    assert monitor.renderer.source("B")["azimuth_deg"] == -120.0
    assert monitor.status()["head_batches"] == 2
    with pytest.raises(InputError, match="rotation"):
        monitor.set_head_rotation(np.diag([1.0, 1.0, -1.0]))        # a reflection
    with pytest.raises(InputError, match="rotation"):
        monitor.set_head_rotation(np.full((3, 3), np.nan))


def test_a_rotation_that_does_not_fit_the_queue_queues_nothing():
    monitor = LiveMonitor(["A", "B", "C"], sample_rate=RATE, block_size=BLOCK, room=None,
                          queue_capacity=4)
    assert monitor.set_source("A", azimuth_deg=10.0) and monitor.set_source("B", azimuth_deg=20.0)
    assert not monitor.set_head_rotation(ypr_to_rotation(45, 0, 0))   # 2 free slots, 3 sources
    assert len(monitor.queue) == 2 and monitor.head_rotation is None
    assert monitor.status()["head_batches_deferred"] == 1
    monitor.process_block(np.zeros((BLOCK, 3), np.float32), np.zeros((BLOCK, 2), np.float32))
    assert monitor.set_head_rotation(ypr_to_rotation(45, 0, 0))
    assert monitor.renderer.source("B")["azimuth_deg"] == pytest.approx(-25.0)


# ------------------------------------------------------------------ audio: the source moves to the right ear
def _interaural(block: np.ndarray, max_lag: int = 48) -> tuple[float, float]:
    """(ITD in samples, positive = right ear lags; ILD in dB, positive = left louder) of (2, n)."""
    left, right = block[0].astype(np.float64), block[1].astype(np.float64)
    n = len(left)
    xc = np.fft.irfft(np.fft.rfft(left, 2 * n) * np.conj(np.fft.rfft(right, 2 * n)))
    lags = np.concatenate([xc[-max_lag:], xc[:max_lag + 1]])
    k = int(np.argmax(lags))
    a, b, c = lags[k - 1], lags[k], lags[k + 1]
    itd = -(k - max_lag + 0.5 * (a - c) / (a - 2 * b + c))
    return float(itd), float(10 * np.log10(np.sum(left ** 2) / np.sum(right ** 2)))


@pytest.mark.parametrize("mode, exact_from", [("itd_ild", 5), ("hrtf", 6)])
def test_yaw_90_over_udp_moves_a_frontal_source_to_the_right_ear(rng, mode, exact_from):
    """Within ``exact_from`` blocks of the batch the output IS a source placed at -90 from the
    start (bit for bit): 1 block to apply, the 4-block (20 ms) ramp, and the head-shadow / HRIR
    filters' last crossfade (one more block in hrtf mode)."""
    blocks_before, blocks_after = 40, 40
    x = (0.1 * rng.standard_normal((blocks_before + blocks_after, BLOCK, 1))).astype(np.float32)
    place = {"Src": {"azimuth_deg": 0.0, "mode": mode, "distance_m": 2.0}}
    monitor = LiveMonitor(["Src"], place, sample_rate=RATE, block_size=BLOCK, room=None)
    right = LiveMonitor(["Src"], {"Src": dict(place["Src"], azimuth_deg=-90.0)},
                        sample_rate=RATE, block_size=BLOCK, room=None)
    tracker = HeadTracker(lambda: monitor, block_period_s=BLOCK / RATE).start()
    out = np.zeros((BLOCK, 2), np.float32)
    ref = np.zeros((BLOCK, 2), np.float32)
    rendered, reference = [], []
    try:
        for i in range(blocks_before + blocks_after):
            if i == blocks_before:
                send(tracker.port, "/ypr", 90.0, 0.0, 0.0)
                # queued at once here (a block was rendered since the tracker's last batch); in
                # a running stream that is at most one block period after the datagram
                assert wait_for(lambda: tracker.status()["batches"] == 1), tracker.status()
            monitor.process_block(x[i], out)
            right.process_block(x[i], ref)
            rendered.append(out.T.copy())
            reference.append(ref.T.copy())
    finally:
        tracker.close()
    rendered, reference = np.array(rendered), np.array(reference)
    itd0, ild0 = _interaural(np.concatenate(rendered[8:blocks_before], axis=1))
    assert itd0 == pytest.approx(0.0, abs=0.05) and ild0 == pytest.approx(0.0, abs=0.05)
    assert _interaural(rendered[blocks_before])[1] < -0.5   # the very next block leans right
    moved = blocks_before + exact_from
    np.testing.assert_allclose(rendered[moved - 1], reference[moved - 1], atol=1e-3)
    np.testing.assert_array_equal(rendered[moved:], reference[moved:])
    assert np.max(np.abs(rendered[blocks_before + 1:moved - 1] - reference[blocks_before + 1:moved - 1])) > 1e-3
    itd, ild = _interaural(np.concatenate(rendered[moved:], axis=1))
    ref_itd, ref_ild = _interaural(np.concatenate(reference[moved:], axis=1))
    assert itd == pytest.approx(ref_itd, abs=0.05) and ild == pytest.approx(ref_ild, abs=0.05)
    assert itd < -20.0 and ild < -3.0   # the left ear lags and is shadowed: the source is right
    if mode == "itd_ild":
        woodworth = HEAD_RADIUS_M / SPEED_OF_SOUND_M_S * (math.pi / 2 + 1.0) * RATE  # 31.5 samples
        assert itd == pytest.approx(-woodworth, abs=1.5)
    # smooth: the ILD walks to the right over the ramp, no block takes the whole move at once
    ilds = [_interaural(rendered[k])[1] for k in range(blocks_before - 1, moved + 1)]
    assert max(abs(np.diff(ilds))) < 0.6 * abs(ref_ild - ild0), ilds
    assert monitor.status()["head_batches"] == 1


# ------------------------------------------------------------------ daemon and command line
def test_daemon_head_tracking_port_status_and_the_plan_stays_in_world_coordinates(tmp_path):
    from daemon_helpers import ask, running_daemon
    with running_daemon(tmp_path, head_tracking_port=0) as d:
        port = d.head_tracker.port
        assert ask(d, "tracks", tracks=["Vox", "Gtr"])["ok"]
        assert ask(d, "set_source", track="Gtr", azimuth_deg=30.0, mode="pan")["ok"]
        monitor = LiveMonitor(["Vox", "Gtr"], {"Gtr": {"azimuth_deg": 30.0, "mode": "pan"}},
                              sample_rate=RATE, block_size=BLOCK, room=None)
        d.monitor = monitor                      # no audio device here: the monitor unstarted
        send(port, "/ypr", 90.0, 0.0, 0.0)
        send(port, "/ypr", "oops")
        assert wait_for(lambda: monitor.head_batches == 1 and d.head_tracker.status()["messages"] == 2)
        assert monitor.renderer.source("Gtr")["azimuth_deg"] == pytest.approx(-60.0)
        status = ask(d, "status")["result"]["head_tracking"]
        assert status["port"] == port and status["messages"] == 2 and status["malformed"] == 1
        assert status["last_ypr_deg"] == [90.0, 0.0, 0.0]
        assert ask(d, "set_source", track="Gtr", azimuth_deg=45.0)["result"]["azimuth_deg"] == 45.0
        assert d.session.plan.source("Gtr").azimuth_deg == 45.0              # the plan: world
        assert monitor.renderer.source("Gtr")["azimuth_deg"] == pytest.approx(-45.0)  # heard: head
    with running_daemon(tmp_path) as d:
        assert ask(d, "status")["result"]["head_tracking"] is None


def test_serve_head_tracking_flag_reaches_the_config_and_bad_ports_are_refused(tmp_path):
    from stase.bridge.daemon import DaemonConfig
    from stase.cli.serve import add_arguments, config_from_args
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    config = config_from_args(parser.parse_args(["--head-tracking", "9300", "--session",
                                                 str(tmp_path / "s.json")]))
    assert config.head_tracking_port == 9300
    with pytest.raises(InputError, match="head_tracking_port"):
        DaemonConfig(head_tracking_port=70000)
