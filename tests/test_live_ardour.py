"""Issue 20: a real Ardour playing into the live monitor over JACK, end to end.

A private JACK server (dummy driver, 48 kHz, 256 frames, 8 captures), a headless Ardour
(``ardour7-lua`` on its JACK backend) with three mono-output tracks, each playing Ardour's own
Lua noise generator ("ACE Noise", Gaussian, pre-fader), the stase daemon with ``--daw ardour
--audio --connect-ardour`` (the routing is the daemon's, :mod:`stase.bridge.jack_routing`), and a
JACK capture client (a sounddevice recorder process) on the monitor's two outputs.  Ardour's
generators share one seed, so each track is measured alone (the others muted over Ardour's
OSC); its ITD/ILD must match the same renderer run offline at the placement stase gave it (and
Woodworth's closed form on the interaural axis), then at a new placement sent over OSC
(``set_source``), and an Ardour fader move of -6 dB must come out 6 dB quieter.  Both monitor
engines (``--engine process`` and ``thread``) are run.

The mix is made as dry as the room allows (``set_room`` ``reverb_db`` at its lower bound, queued
to the running monitor, no restart).  At the room's own wetness the broadband interaural
cross-correlation of an ``itd_ild`` source at -30 deg in dry_studio has three peaks of nearly
equal height (-13 samples, the direct sound; -22 and -40, the room; normalised heights
0.08-0.11), and which one is highest depends on the noise: with six seeds offline, three gave
-22 samples.  That was the "stale ITD of -45 deg" this test was marked xfail for (issue 20): a
measurement that could not tell, not a monitor that rendered the wrong place (ILD right, -3.7 dB).
At the lowest wetness the direct peak is 0.69 and the next below 0.03 for every seed.
"""
from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from ardour_host import ardour_session, jack_server  # tests/ is on sys.path under pytest
from stase.bridge.client import request
from stase.bridge.daemon import Daemon, DaemonConfig
from stase.bridge.osc_transport import build_message
from stase.core.conventions import HEAD_RADIUS_M, SPEED_OF_SOUND_M_S
from stase.core.placement import REVERB_DB_RANGE

pytestmark = [pytest.mark.ardour, pytest.mark.jack, pytest.mark.slow]
RATE, BLOCK = 48_000, 256
TRACKS = ["Vox", "Gtr", "Bass"]
FIRST = {"Vox": 60.0, "Gtr": -45.0, "Bass": 0.0}
#: the driest mix the room allows: the measured ITD is the direct sound's (module docstring)
WETNESS_DB = REVERB_DB_RANGE[0]
SECOND = {"Vox": -30.0, "Gtr": 90.0, "Bass": 45.0}
NOISE_LUA = """
for r in Session:get_tracks():iter() do
  local p = ARDOUR.LuaAPI.new_plugin(Session, "ACE Noise", ARDOUR.PluginType.Lua, "")
  if p:isnil() then print("FAILED: no ACE Noise plugin") io.stdout:flush() os.exit(4) end
  r:add_processor_by_index(p, 0, nil, true)
  ARDOUR.LuaAPI.set_processor_param(p, 0, -20)  -- level, dBFS
  ARDOUR.LuaAPI.set_processor_param(p, 1, 1)    -- Gaussian white noise
end
Session:request_roll(ARDOUR.TransportRequestSource.TRS_UI)
"""
RECORDER = textwrap.dedent("""
    import sys, numpy as np, sounddevice as sd
    chunks, state = [], {"on": False}
    def cb(indata, frames, t, status):
        if state["on"]:
            chunks.append(indata.copy())
    with sd.InputStream(samplerate=48000, blocksize=256, channels=2, dtype="float32", callback=cb):
        print("READY", flush=True)
        for line in sys.stdin:
            seconds, path = line.split()
            chunks.clear(); state["on"] = True
            sd.sleep(int(float(seconds) * 1000))
            state["on"] = False
            np.save(path, np.concatenate(chunks).T)
            print("DONE", flush=True)
""")


def wait_for(predicate, timeout_s=20.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def jack_ports() -> set[str]:
    return set(subprocess.run(["jack_lsp"], capture_output=True, text=True, timeout=10).stdout.split("\n")) - {""}


def interaural(binaural: np.ndarray, max_lag: int = 48) -> tuple[float, float]:
    """(ITD in samples, positive = right ear lags; ILD in dB, positive = left louder)."""
    left, right = binaural[0].astype(np.float64), binaural[1].astype(np.float64)
    n = len(left)
    xc = np.fft.irfft(np.fft.rfft(left, 2 * n) * np.conj(np.fft.rfft(right, 2 * n)))
    lags = np.concatenate([xc[-max_lag:], xc[:max_lag + 1]])
    k = int(np.argmax(lags))
    a, b, c = lags[k - 1], lags[k], lags[k + 1]
    return float(-(k - max_lag + 0.5 * (a - c) / (a - 2 * b + c))), \
        float(10 * np.log10(np.sum(left ** 2) / np.sum(right ** 2)))


def woodworth_samples(azimuth_deg: float) -> float:
    theta = math.radians(azimuth_deg)
    return HEAD_RADIUS_M / SPEED_OF_SOUND_M_S * (theta + math.sin(theta)) * RATE


def offline_reference(azimuth_deg: float, room: str, rng, reverb_db: float) -> tuple[float, float]:
    from stase.dsp.scene import SceneRenderer
    renderer = SceneRenderer(sample_rate=RATE, block_size=BLOCK, room=room, reverb_db=reverb_db)
    renderer.add_source("X", azimuth_deg=azimuth_deg, mode="itd_ild", distance_m=2.0)
    noise = (0.1 * rng.standard_normal(3 * RATE)).astype(np.float32)
    return interaural(renderer.process(noise[None, :])[:, RATE:])


# Once in about four runs on the loaded 2-core machine (other sessions running JACK and Ardour
# too) Ardour's ports were not listed by jack_lsp within the routing's 10 s, and on one clean
# clone Ardour lost its JACK server while it loaded the session, twice in a row ("JACK HALTED:
# JACK server has been closed" in its log, before the daemon had started; the other engine's take
# then passed): fresh takes, each with its own jackd and Ardour, are allowed; the assertion
# prints jack_lsp and Ardour's log.
@pytest.mark.flaky(reruns=3, reruns_delay=2)
@pytest.mark.parametrize("engine", ["process", "thread"])
def test_ardour_tracks_play_through_the_monitor_at_their_placements(tmp_path, rng, engine):
    with jack_server(capture_ports=8), \
            ardour_session(TRACKS, backend="JACK", outputs=1, extra_lua=NOISE_LUA) as host:
        d = Daemon(DaemonConfig(port=0, daw="ardour", daw_port=host.osc_port, audio=True,
                                audio_hostapi="JACK", connect_ardour=True, block_size=BLOCK,
                                engine=engine,
                                session=str(tmp_path / "s.json"), durable_saves=False))
        d.start()
        recorder = None
        ardour = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            # (a loaded host's headless Ardour has taken over 20 s to list its third track: 40 s)
            assert wait_for(lambda: d.session.track_names() == TRACKS, 40.0), d.session.track_names()
            def routed() -> bool:  # the monitor for all tracks runs and the routing is its own
                m, r = d.monitor, d.routing
                return (m is not None and m.status()["running"] and r is not None
                        and r.get("monitor_inputs") == len(TRACKS) and not d._restart_lock.locked())
            assert wait_for(routed, 60), (d.audio_error, d.routing)
            time.sleep(1.0)   # a second track report from Ardour restarts the monitor once more
            assert wait_for(routed, 60), (d.audio_error, d.routing)
            routing = d.routing
            assert not routing.get("errors") and not routing.get("missing_tracks"), \
                (routing, sorted(jack_ports()), host.log_tail(1500))
            client = routing["monitor_client"]
            inputs = [c[1] for c in routing["connected"]]
            assert [c[0] for c in routing["connected"]] == [f"ardour:{t}/audio_out 1" for t in TRACKS]
            assert inputs == sorted(inputs, key=lambda p: int(p.rsplit("_", 1)[1])) and len(set(inputs)) == 3
            status = request("status", {}, port=d.port)["result"]["audio"]
            assert status["running"] and status["routing"]["monitor_client"] == client
            assert status["engine"] == engine
            wet = request("set_room", {"reverb_db": WETNESS_DB}, port=d.port, timeout_s=5)
            assert wet["ok"], wet

            before = jack_ports()
            script = tmp_path / "recorder.py"
            script.write_text(RECORDER)
            recorder = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, env=dict(os.environ))
            assert recorder.stdout.readline().strip() == "READY"
            rec_in = sorted(p for p in jack_ports() - before if ":in_" in p)
            assert len(rec_in) == 2, jack_ports() - before
            for port in rec_in:  # PortAudio connects the physical captures by itself
                for capture in ("system:capture_1", "system:capture_2"):
                    subprocess.run(["jack_disconnect", capture, port], capture_output=True, timeout=10)
            monitor_out = sorted((p for p in jack_ports() if p.startswith(f"{client}:out_")),
                                 key=lambda p: int(p.rsplit("_", 1)[1]))
            assert len(monitor_out) == 2, monitor_out
            for source, port in zip(monitor_out, rec_in):
                out = subprocess.run(["jack_connect", source, port], capture_output=True,
                                     text=True, timeout=10)
                assert out.returncode == 0, out.stderr

            def record(seconds: float = 1.5) -> np.ndarray:
                path = tmp_path / f"take{time.monotonic_ns()}.npy"
                recorder.stdin.write(f"{seconds} {path}\n")
                recorder.stdin.flush()
                assert recorder.stdout.readline().strip() == "DONE"
                return np.load(path)

            def solo(track: str) -> None:
                for ssid, name in enumerate(TRACKS, start=1):
                    ardour.sendto(build_message("/strip/mute", [ssid, int(name != track)]),
                                  ("127.0.0.1", host.osc_port))

            room = d.session.plan.room
            results = []
            for placements in (FIRST, SECOND):
                for track, azimuth in placements.items():   # from stase, over OSC
                    r = request("set_source", {"track": track, "azimuth_deg": azimuth, "mode": "itd_ild",
                                               "distance_m": 2.0}, port=d.port, timeout_s=5)
                    assert r["ok"], r
                for track, azimuth in placements.items():
                    # Ardour applies OSC mutes when its control thread gets to them: measure until
                    # two takes in a row agree (settled), re-sending the solo, at most 4 takes
                    solo(track)
                    time.sleep(0.5)                           # mute ramps, the 20 ms move ramp
                    take = record()
                    itd, ild = interaural(take)
                    for _ in range(3):
                        solo(track)
                        time.sleep(0.3)
                        again = record()
                        itd2, ild2 = interaural(again)
                        settled = abs(itd2 - itd) < 0.25 and abs(ild2 - ild) < 0.25
                        take, itd, ild = again, itd2, ild2
                        if settled:
                            break
                    assert np.sqrt(np.mean(take ** 2)) > 1e-3, f"no sound from {track}"
                    ref_itd, ref_ild = offline_reference(azimuth, room, rng, WETNESS_DB)
                    results.append((track, azimuth, itd, ild, ref_itd, ref_ild))
            print("track, azimuth, ITD, ILD, offline ITD, offline ILD:",
                  [tuple(round(v, 2) if isinstance(v, float) else v for v in row) for row in results])
            for track, azimuth, itd, ild, ref_itd, ref_ild in results:
                # the same renderer offline on the same kind of noise (the measured cross-
                # correlation ITD includes the head-shadow filters' group delay off the axis)
                assert itd == pytest.approx(ref_itd, abs=0.5), (track, azimuth)
                assert np.sign(itd) == np.sign(round(azimuth)) or azimuth == 0.0
                if abs(azimuth) == 90.0:   # on the interaural axis: Woodworth's 31.5 samples
                    assert itd == pytest.approx(woodworth_samples(azimuth), abs=1.5), (track, azimuth)
                assert ild == pytest.approx(ref_ild, abs=1.0), (track, azimuth)

            # Ardour's fader, -6 dB on the soloed Bass: the binaural output drops 6 dB
            solo("Bass")
            time.sleep(0.3)
            level = 10 * np.log10(np.mean(record() ** 2))
            ardour.sendto(build_message("/strip/gain", [3, -6.0]), ("127.0.0.1", host.osc_port))
            time.sleep(0.5)
            quieter = 10 * np.log10(np.mean(record() ** 2))
            print(f"Ardour fader -6 dB: output {quieter - level:+.2f} dB")
            assert quieter - level == pytest.approx(-6.0, abs=0.5)
            audio = request("status", {}, port=d.port)["result"]["audio"]
            assert audio["callback_errors"] == 0
        finally:
            ardour.close()
            if recorder is not None:
                recorder.stdin.close()
                recorder.wait(10)
            d.stop()
