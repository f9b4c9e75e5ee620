"""Live monitoring and MIDI on a real JACK server (jackd, dummy driver), plus the callback's logic.

The JACK tests start their own ``jackd --no-realtime -d dummy -r 48000 -p 256`` under a private
server name (so they never touch another JACK), play a signal into the monitor from a second
JACK client (a small sounddevice player/recorder process), record the monitor's output and
compare its ITD/ILD with the Woodworth closed form and with the same renderer run offline.
If jackd cannot start, they fail and say why.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from stase.bridge.monitor import LiveMonitor
from stase.core.conventions import HEAD_RADIUS_M, SPEED_OF_SOUND_M_S

RATE, BLOCK = 48000, 256
ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ helpers
def interaural(binaural: np.ndarray, max_lag: int = 60) -> tuple[float, float]:
    """(ITD in samples, positive = right ear lags; ILD in dB, positive = left louder)."""
    left, right = binaural[0].astype(np.float64), binaural[1].astype(np.float64)
    n = len(left)
    spec = np.fft.rfft(left, 2 * n) * np.conj(np.fft.rfft(right, 2 * n))
    xc = np.fft.irfft(spec)
    lags = np.concatenate([xc[-max_lag:], xc[:max_lag + 1]])  # lag -max..+max of left vs right
    k = int(np.argmax(lags))
    # parabolic interpolation of the peak
    a, b, c = lags[k - 1], lags[k], lags[k + 1]
    frac = 0.5 * (a - c) / (a - 2 * b + c)
    itd = -(k - max_lag + frac)
    ild = 10 * np.log10(np.sum(left ** 2) / np.sum(right ** 2))
    return float(itd), float(ild)


def woodworth_samples(azimuth_deg: float) -> float:
    theta = np.radians(azimuth_deg)
    return HEAD_RADIUS_M / SPEED_OF_SOUND_M_S * (theta + np.sin(theta)) * RATE


# ------------------------------------------------------------------ callback logic (no JACK)
def test_callback_applies_a_move_in_the_very_next_block_and_matches_the_renderer(rng):
    from stase.dsp.scene import SceneRenderer
    place = {"A": {"azimuth_deg": 30.0, "mode": "itd_ild"}}
    monitor = LiveMonitor(["A", "B"], place, sample_rate=RATE, block_size=BLOCK, room=None)
    unmoved = LiveMonitor(["A", "B"], place, sample_rate=RATE, block_size=BLOCK, room=None)
    reference = SceneRenderer(sample_rate=RATE, block_size=BLOCK, room=None)
    reference.add_source("A", azimuth_deg=30.0, mode="itd_ild")
    reference.add_source("B")
    x = rng.standard_normal((24, BLOCK, 2)).astype(np.float32) * 0.1
    out = np.zeros((BLOCK, 2), np.float32)
    out_unmoved = np.zeros((BLOCK, 2), np.float32)
    ref = np.zeros((2, BLOCK), np.float32)
    for i in range(24):
        if i == 20:
            assert monitor.set_source("a", azimuth_deg=-60.0, gain_db=-6.0)
            reference.move_source("A", azimuth_deg=-60.0, gain_db=-6.0)
        monitor.process_block(x[i], out)
        unmoved.process_block(x[i], out_unmoved)
        reference.process(np.ascontiguousarray(x[i].T), ref)
        np.testing.assert_allclose(out.T, ref, rtol=0, atol=1e-6)  # same as the renderer itself
        if i < 20:
            np.testing.assert_array_equal(out, out_unmoved)
        elif i == 20:  # the block right after the move already carries it
            assert np.max(np.abs(out - out_unmoved)) > 1e-3
    assert monitor.commands_applied == 1 and monitor.latency_count == 1
    assert not monitor.set_source("nope", azimuth_deg=1.0)


def test_wrong_block_size_is_silenced_and_counted():
    monitor = LiveMonitor(["A"], sample_rate=RATE, block_size=BLOCK, room=None)
    out = np.ones((100, 2), np.float32)
    monitor.process_block(np.ones((100, 1), np.float32), out)
    assert monitor.irregular_blocks == 1 and not out.any()


# ------------------------------------------------------------------ real JACK
@pytest.fixture(scope="module")
def jack_server():
    """A private JACK dummy server for this module (tests/ardour_host.py's, the one helper)."""
    from ardour_host import ArdourUnavailable, jack_server as run_jack
    try:
        with run_jack(rate=RATE, period=BLOCK, capture_ports=4) as name:
            yield name
    except ArdourUnavailable as exc:
        pytest.fail(f"{exc} (apt-get install --no-install-recommends jackd2)")


def jack_ports() -> set[str]:
    return set(subprocess.run(["jack_lsp"], capture_output=True, text=True, timeout=10).stdout.split("\n")) - {""}


def jack_connect(a: str, b: str) -> None:
    r = subprocess.run(["jack_connect", a, b], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, f"jack_connect {a} {b}: {r.stderr}"


def jack_disconnect_all(port: str) -> None:
    subprocess.run(["jack_disconnect", port, "system:playback_1"], capture_output=True, timeout=10)
    subprocess.run(["jack_disconnect", port, "system:playback_2"], capture_output=True, timeout=10)


PLAYER = textwrap.dedent("""
    import sys, time, numpy as np, sounddevice as sd
    seconds, out_path = float(sys.argv[1]), sys.argv[2]
    rng = np.random.default_rng(7)
    signal = (0.1 * rng.standard_normal(int(seconds * 48000))).astype(np.float32)
    recorded = np.zeros((len(signal), 2), np.float32)
    pos = [0]
    def cb(indata, outdata, frames, t, status):
        i = pos[0]
        n = min(frames, len(signal) - i)
        outdata.fill(0)
        if n > 0:
            outdata[:n, 0] = signal[i:i + n]
            recorded[i:i + n] = indata[:n]
        pos[0] = i + frames
    with sd.Stream(samplerate=48000, blocksize=256, channels=(2, 1), dtype="float32", callback=cb):
        print("PLAYING", flush=True)
        sys.stdin.readline()          # the test connects ports, then says go
        pos[0] = 0
        time.sleep(seconds + 0.3)
    np.save(out_path, np.stack([signal, recorded[:, 0], recorded[:, 1]]))
    print("DONE", flush=True)
""")


@pytest.mark.jack
@pytest.mark.slow
# The JACK dummy driver runs without real-time scheduling on a shared 2-core machine: once in
# several full-suite runs the OS starved the graph during the 10 s take.  Two fresh takes are
# allowed (one was not enough in a clean-clone CI run on 2026-12-01: 29 and 37 xruns in 2 177
# blocks, both takes in the same noisy minute); every assertion stays as strict, and a third
# failure fails the suite.
@pytest.mark.flaky(reruns=2)
def test_live_monitor_on_jack_renders_itd_and_ild_without_xruns(jack_server, tmp_path):
    azimuth = 90.0
    monitor = LiveMonitor(["Src", "Other"], {"Src": {"azimuth_deg": azimuth, "mode": "itd_ild",
                                                     "distance_m": 2.0}},
                          sample_rate=RATE, block_size=BLOCK, room=None)
    before = jack_ports()
    monitor.start(hostapi="JACK")
    try:
        monitor_ports = sorted(jack_ports() - before)
        script = tmp_path / "player.py"
        script.write_text(PLAYER)
        seconds = 10.5
        player = subprocess.Popen([sys.executable, str(script), str(seconds), str(tmp_path / "rec.npy")],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                  env=dict(os.environ, PYTHONPATH=str(ROOT)))
        try:
            assert player.stdout.readline().strip() == "PLAYING"
            player_ports = sorted(jack_ports() - before - set(monitor_ports))
            m_in = [p for p in monitor_ports if ":in_" in p]
            m_out = [p for p in monitor_ports if ":out_" in p]
            p_in = [p for p in player_ports if ":in_" in p]
            p_out = [p for p in player_ports if ":out_" in p]
            assert len(m_in) == 2 and len(m_out) == 2 and len(p_in) == 2 and len(p_out) == 1, \
                (monitor_ports, player_ports)
            subprocess.run(["jack_disconnect", "system:capture_1", m_in[0]], capture_output=True)
            subprocess.run(["jack_disconnect", "system:capture_1", p_in[0]], capture_output=True)
            subprocess.run(["jack_disconnect", "system:capture_2", p_in[1]], capture_output=True)
            jack_connect(p_out[0], m_in[0])
            jack_connect(m_out[0], p_in[0])
            jack_connect(m_out[1], p_in[1])
            xruns_before, overruns_before = monitor.xruns, monitor.callback_overruns
            player.stdin.write("go\n")
            player.stdin.flush()
            assert player.stdout.readline().strip() == "DONE"
        finally:
            if player.poll() is None:
                player.kill()
            player.wait(10)
        status = monitor.status()
    finally:
        monitor.stop()
    data = np.load(tmp_path / "rec.npy")
    signal, recorded = data[0], data[1:]
    assert status["blocks"] >= 10 * RATE / BLOCK
    # xruns while the signal played: 0 on an idle machine.  The dummy driver is not real-time, so
    # on a loaded machine (CI beside other jobs) the OS can delay the whole graph or preempt our
    # callback; we allow at most 1 % of the blocks, and the status reports the exact counts.
    assert status["callback_errors"] == 0
    assert monitor.xruns - xruns_before <= 0.01 * status["blocks"], status
    assert monitor.callback_overruns - overruns_before <= 0.01 * status["blocks"], status
    steady = recorded[:, RATE:]                       # skip the first second (latency, ramps)
    assert np.sqrt(np.mean(steady ** 2)) > 1e-3, "no signal came back from the monitor"
    itd, ild = interaural(steady)
    # the same scene rendered offline with the same signal
    from stase.dsp.scene import SceneRenderer
    ref = SceneRenderer(sample_rate=RATE, block_size=BLOCK, room=None)
    ref.add_source("Src", azimuth_deg=azimuth, mode="itd_ild", distance_m=2.0)
    offline = ref.process(signal[None, :].astype(np.float32))
    ref_itd, ref_ild = interaural(offline[:, RATE:])
    print(f"jack monitor: {status['blocks']} blocks, xruns {monitor.xruns - xruns_before}, "
          f"overruns {monitor.callback_overruns - overruns_before}, max callback "
          f"{status['max_callback_ms']} ms, cpu {status['cpu_load']}, ITD {itd:.2f} smp, ILD {ild:.2f} dB")
    assert itd == pytest.approx(woodworth_samples(azimuth), abs=1.5)   # Woodworth: 31.5 samples
    assert itd == pytest.approx(ref_itd, abs=0.1)
    assert ild == pytest.approx(ref_ild, abs=0.2)
    assert ild > 3.0  # head shadow: the left (near) ear is clearly louder


@pytest.mark.jack
def test_midi_cc_on_jack_moves_the_selected_source_and_is_echoed(jack_server, tmp_path):
    import mido
    from stase.bridge.daemon import Daemon, DaemonConfig
    d = Daemon(DaemonConfig(port=0, midi=True, midi_port_name="stase-midi-test",
                            session=str(tmp_path / "s.json"), durable_saves=False))
    d.start()
    backend = mido.Backend("mido.backends.rtmidi/UNIX_JACK", load=True)
    try:
        assert d.midi.backend_api in ("LINUX_ALSA", "UNIX_JACK")
        d.verb_tracks({"tracks": ["Vox", "Sax"]})
        d.verb_select({"track": "Sax"})
        outs = [n for n in backend.get_output_names() if "stase-midi-test" in n]
        ins = [n for n in backend.get_input_names() if "stase-midi-test" in n]
        assert outs and ins, (backend.get_output_names(), backend.get_input_names())
        echoed = []
        with backend.open_output(outs[0]) as out, backend.open_input(ins[0], callback=echoed.append):
            out.send(mido.Message("control_change", channel=0, control=16, value=32))
            deadline = time.monotonic() + 5
            while not echoed and time.monotonic() < deadline:
                time.sleep(0.02)
        expected = -180 + 360 * 32 / 127
        assert d.session.plan.source("Sax").azimuth_deg == pytest.approx(expected)
        cc16 = [m for m in echoed if m.control == 16]
        assert cc16 and cc16[0].value == 32
    finally:
        d.stop()


@pytest.mark.jack
def test_daemon_with_audio_opens_the_monitor_for_its_tracks_and_routes_moves_to_it(jack_server, tmp_path):
    from stase.bridge.client import request
    from stase.bridge.daemon import Daemon, DaemonConfig
    d = Daemon(DaemonConfig(port=0, audio=True, audio_hostapi="JACK", block_size=BLOCK,
                            session=str(tmp_path / "s.json"), durable_saves=False))
    d.start()
    try:
        t0 = time.monotonic()
        assert request("tracks", {"tracks": ["Vox", "Gtr"]}, port=d.port, timeout_s=3)["ok"]
        assert time.monotonic() - t0 < 2.0  # the renderer is built off the request thread
        deadline = time.monotonic() + 30
        while d.monitor is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert d.monitor is not None, d.audio_error
        # a monitor just built may still apply the scene it was started with: count from a quiet
        # moment (no command applied for 0.5 s), so the one move below is the only new command
        applied, quiet_since = d.monitor.commands_applied, time.monotonic()
        deadline = time.monotonic() + 10
        while time.monotonic() - quiet_since < 0.5 and time.monotonic() < deadline:
            time.sleep(0.05)
            if d.monitor.commands_applied != applied:
                applied, quiet_since = d.monitor.commands_applied, time.monotonic()
        assert request("set_source", {"track": "Gtr", "azimuth_deg": 60.0}, port=d.port)["ok"]
        deadline = time.monotonic() + 5
        while d.monitor.commands_applied == applied and time.monotonic() < deadline:
            time.sleep(0.02)
        assert d.monitor.commands_applied == applied + 1
        audio = request("status", {}, port=d.port)["result"]["audio"]
        assert audio["running"] and audio["tracks"] == 2 and audio["error"] is None
        assert {"xruns", "cpu_load", "callback_overruns"} <= set(audio)
    finally:
        d.stop()
