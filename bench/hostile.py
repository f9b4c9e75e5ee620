"""Attack the daemon as a hostile local process would: ``python -m bench.hostile [--json]``.

Three parts, each reporting what was tried and what held (the figures in docs/daemon.md):

* ``fuzz``: ``--datagrams`` datagrams to a daemon in this process (``--daw none``, a temp
  session): random bytes, truncated OSC, valid OSC carrying broken JSON, and valid requests whose
  fields were mutated (NaN/Inf, 400-digit and 1e400 numbers, huge strings, wrong types, unknown
  verbs and keys).  Held when the daemon still answers ``status``, counted no internal error,
  and its session file still loads with every number finite and inside stase.core.placement's bounds.
* ``kill9``: ``--kills`` runs of ``stase serve`` in a subprocess, each sent paced ``set_source``
  requests whose replies are counted as acknowledged, then killed with SIGKILL at a random
  moment; after a restart on the same session file, the last acknowledged value of every track
  must be there.  Counts acknowledged updates lost (goal 0) and stale temp files left (goal 0).
* ``oversize``: the largest requests a client can send (a 60 KB prompt, 2 500 tracks, a 65 KB
  role): each must be refused at once with the daemon still answering ``status``.

Deterministic for ``--seed``.  Numbers vary with machine load only in their timings.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from stase.bridge.osc_transport import build_message, parse_datagram
from stase.core.placement import GAIN_DB_RANGE

TRACKS = ["Vox", "Sax", "Bass", "Drums"]
HOSTILE_VALUES = [float("nan"), float("inf"), -float("inf"), 10 ** 400, "1e400", 1e308, -1e308,
                  None, True, [], {}, "x" * 70_000, "", " ", -1, 0, 1e-320, "NaN", [1, [2, [3]]],
                  {"a": {"b": {"c": {}}}}, "\x00\udcff", 2 ** 63, -(2 ** 63) - 1]
VERBS = ["status", "sources", "tracks", "set_source", "select", "midi_learn", "apply", "plan",
         "edit", "advise", "listen", "chat", "nope", "", "../../etc", "set_source/extra"]


def _datagram(rng: random.Random) -> bytes:
    kind = rng.randrange(5)
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
    base = {"track": rng.choice(TRACKS + ["nobody", ""]), "azimuth_deg": 30.0, "distance_m": 2.0}
    if kind == 1:  # a valid message, truncated
        full = build_message("/stase/set_source", [json.dumps(base)])
        return full[: rng.randrange(1, len(full))]
    if kind == 2:  # valid OSC, broken JSON
        text = json.dumps(base)
        cut = text[: rng.randrange(len(text))] + rng.choice(["", "}", "]]]", "\\", '"'])
        return build_message(f"/stase/{rng.choice(VERBS)}", [cut])
    # valid JSON with hostile fields
    params = dict(base)
    for _ in range(rng.randrange(1, 4)):
        key = rng.choice(["azimuth_deg", "elevation_deg", "distance_m", "gain_db", "mode", "role",
                          "track", "tracks", "plan", "prompt", "text", "path", "stems_dir", "id",
                          "azimth_deg", "question"])
        params[key] = rng.choice(HOSTILE_VALUES)
    try:
        text = json.dumps(params, allow_nan=True)
    except (ValueError, TypeError):
        text = "{\"track\": \"Vox\", \"gain_db\": NaN}"
    if len(text) > 60_000:
        text = text[:60_000]
    try:
        return build_message(f"/stase/{rng.choice(VERBS)}", [text])
    except Exception:  # noqa: BLE001 - an unencodable surrogate: send raw bytes instead
        return text.encode("utf-8", "surrogatepass")[:500]


def _ask(sock: socket.socket, verb: str, params: dict, timeout_s: float = 5.0) -> dict | None:
    sock.send(build_message(f"/stase/{verb}", [json.dumps(params)]))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = sock.recv(65535)
        except socket.timeout:
            return None
        for _, args in parse_datagram(data):
            reply = json.loads(args[0])
            if reply.get("id") == params.get("id") and reply.get("status") not in ("accepted", "progress"):
                return reply
    return None


def _session_sane(path: Path) -> tuple[bool, str]:
    from stase.bridge.session import Session
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        session = Session(path, durable=False)
    except Exception as exc:  # noqa: BLE001 - any failure is the finding
        return False, f"{type(exc).__name__}: {exc}"
    for s in session.plan.sources:
        values = [s.azimuth_deg, s.elevation_deg, s.distance_m, s.gain_db]
        if not all(math.isfinite(v) for v in values) or not GAIN_DB_RANGE[0] <= s.gain_db <= GAIN_DB_RANGE[1]:
            return False, f"bad stored placement {s}"
    return isinstance(data, dict), "ok"


def fuzz(datagrams: int, seed: int) -> dict:
    from stase.bridge.daemon import Daemon, DaemonConfig
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        session = Path(tmp) / "stase-session.json"
        daemon = Daemon(DaemonConfig(port=0, session=str(session), durable_saves=False)).start()
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.connect(("127.0.0.1", daemon.port))
            assert _ask(sock, "tracks", {"id": "t", "tracks": TRACKS})["ok"]
            started = time.perf_counter()
            for i in range(datagrams):
                sock.send(_datagram(rng))
                if i % 50 == 49:
                    time.sleep(0.005)  # paced: this measures robustness, not the flood (bench.bridge)
            # a fresh socket: the fuzzing one's receive buffer is full of unread replies, where
            # the kernel would drop the status reply (that is the client's problem, not the daemon's)
            probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            probe.connect(("127.0.0.1", daemon.port))
            alive = None
            for attempt in range(3):
                alive = _ask(probe, "status", {"id": f"alive-{attempt}"}, timeout_s=10.0)
                if alive:
                    break
            probe.close()
            sock.close()
            seconds = time.perf_counter() - started
            stats = alive["result"] if alive else {}
            sane, why = _session_sane(session)
            return {"datagrams": datagrams, "seconds": round(seconds, 1), "alive": bool(alive and alive["ok"]),
                    "internal_errors": stats.get("requests", {}).get("internal_errors"),
                    "parse_errors": stats.get("osc", {}).get("parse_errors"),
                    "requests": stats.get("requests", {}).get("requests"),
                    "errors_replied": stats.get("requests", {}).get("errors"),
                    "session_sane": sane, "session_check": why}
        finally:
            daemon.stop()


def _serve(session: Path, port: int) -> subprocess.Popen:
    stase = Path(sys.executable).with_name("stase")
    cmd = [str(stase)] if stase.exists() else [sys.executable, "-m", "stase.cli"]
    return subprocess.Popen(cmd + ["serve", "--daw", "none", "--port", str(port), "--session", str(session)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kill9(kills: int, seed: int) -> dict:
    rng = random.Random(seed)
    acked_total, lost, temp_left, restarts_ok = 0, 0, 0, 0
    with tempfile.TemporaryDirectory() as tmp:
        session = Path(tmp) / "stase-session.json"
        last: dict[str, float] = {}
        for run in range(kills):
            port = _free_port()
            proc = _serve(session, port)
            try:
                line = proc.stdout.readline()  # "stase daemon ready on udp ..."
                if "ready" not in line:
                    raise RuntimeError(f"daemon did not start: {line!r}")
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sock.connect(("127.0.0.1", port))
                reply = _ask(sock, "sources", {"id": "check"})
                if reply and reply["ok"]:
                    restarts_ok += 1
                    stored = {s["track"]: s.get("azimuth_deg") for s in reply["result"]["sources"] if s["placed"]}
                    lost += sum(1 for t, az in last.items() if stored.get(t) != az)
                if run == 0:
                    _ask(sock, "tracks", {"id": "t", "tracks": TRACKS})
                deadline = time.monotonic() + rng.uniform(0.05, 0.6)
                n = 0
                while time.monotonic() < deadline:
                    n += 1
                    track = rng.choice(TRACKS)
                    az = round(rng.uniform(-179, 179), 3)
                    r = _ask(sock, "set_source", {"id": f"{run}-{n}", "track": track, "azimuth_deg": az},
                             timeout_s=2.0)
                    if r and r["ok"]:
                        last[track] = r["result"]["azimuth_deg"]
                        acked_total += 1
                sock.close()
            finally:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
        # one last restart: its start removes stale temp files; count what is left after it
        port = _free_port()
        proc = _serve(session, port)
        try:
            proc.stdout.readline()
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.connect(("127.0.0.1", port))
            reply = _ask(sock, "sources", {"id": "final"})
            stored = {s["track"]: s.get("azimuth_deg") for s in reply["result"]["sources"] if s["placed"]}
            lost += sum(1 for t, az in last.items() if stored.get(t) != az)
            temp_left = len([p for p in Path(tmp).iterdir() if p.name.endswith(".tmp")])
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=10)
    return {"kills": kills, "acknowledged_updates": acked_total, "last_acknowledged_lost": lost,
            "restarts_answering": restarts_ok, "temp_files_left": temp_left}


def oversize() -> dict:
    from stase.bridge.daemon import Daemon, DaemonConfig
    cases = {"prompt_60kb": ("plan", {"prompt": "trade places " * 4600}),
             "tracks_2500": ("tracks", {"tracks": [f"T{i}" for i in range(2500)]}),
             "role_65kb": ("set_source", {"track": "Vox", "role": "r" * 50_000}),
             "gain_1e308": ("set_source", {"track": "Vox", "gain_db": 1e308})}
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        daemon = Daemon(DaemonConfig(port=0, session=str(Path(tmp) / "s.json"), durable_saves=False)).start()
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.connect(("127.0.0.1", daemon.port))
            _ask(sock, "tracks", {"id": "t", "tracks": TRACKS})
            for name, (verb, params) in cases.items():
                t0 = time.perf_counter()
                reply = _ask(sock, verb, dict(params, id=name), timeout_s=10.0)
                alive = _ask(sock, "status", {"id": f"{name}-status"})
                out[name] = {"refused": bool(reply) and reply["ok"] is False,
                             "reply_ms": round((time.perf_counter() - t0) * 1e3, 1),
                             "status_after": bool(alive and alive["ok"])}
        finally:
            daemon.stop()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--datagrams", type=int, default=3000)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args(argv)
    result = {"fuzz": fuzz(args.datagrams, args.seed), "oversize": oversize(),
              "kill9": kill9(args.kills, args.seed)}
    result["held"] = (result["fuzz"]["alive"] and result["fuzz"]["internal_errors"] == 0
                      and result["fuzz"]["session_sane"]
                      and all(v["refused"] and v["status_after"] for v in result["oversize"].values())
                      and result["kill9"]["last_acknowledged_lost"] == 0
                      and result["kill9"]["temp_files_left"] == 0)
    print(json.dumps(result, indent=None if args.json else 2))
    return 0 if result["held"] else 1


if __name__ == "__main__":
    sys.exit(main())
