"""``stase serve``: run the daemon in the foreground until SIGINT/SIGTERM.

Logs go to stderr.  Flags override the YAML ``--config`` file, which overrides the defaults of
:class:`bridge.daemon.DaemonConfig`.
"""
from __future__ import annotations

import argparse
import logging
import signal
import threading

from dsp.errors import InputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=None, help="UDP port for requests (default 9100)")
    parser.add_argument("--host", default=None,
                        help="address to bind (default 127.0.0.1; another one only when you ask)")
    parser.add_argument("--daw", choices=("reaper", "ardour", "none"), default=None,
                        help="which DAW to talk to (default none: the daemon's own session)")
    parser.add_argument("--daw-host", default=None, help="the DAW's OSC address (default 127.0.0.1)")
    parser.add_argument("--daw-port", type=int, default=None,
                        help="the DAW's OSC port (Ardour 3819, REAPER 8000)")
    parser.add_argument("--daw-listen-port", type=int, default=None,
                        help="where REAPER sends feedback (default 9000)")
    parser.add_argument("--config", default=None, help="YAML file with DaemonConfig keys")
    parser.add_argument("--session", default=None,
                        help="session file (default ./stase-session.json, next to the DAW project)")
    parser.add_argument("--audio", dest="audio", action="store_true", default=None,
                        help="live binaural monitoring (sounddevice: one input per track, stereo out)")
    parser.add_argument("--no-audio", dest="audio", action="store_false")
    parser.add_argument("--audio-device", default=None, help="sounddevice device name or id")
    parser.add_argument("--audio-hostapi", default=None, help="e.g. JACK: use that host API's devices")
    parser.add_argument("--sample-rate", type=int, default=None)
    parser.add_argument("--block-size", type=int, default=None)
    parser.add_argument("--midi", action="store_true", default=None,
                        help="open virtual MIDI in/out ports for CC control")
    parser.add_argument("--midi-map", default=None, help="YAML CC mapping (default: built-in)")
    parser.add_argument("--conductor-model", default=None, help='"auto", "none" or a GGUF path')
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def config_from_args(args: argparse.Namespace):
    from .daemon import DaemonConfig
    overrides = {"port": args.port, "host": args.host, "daw": args.daw, "daw_host": args.daw_host,
                 "daw_port": args.daw_port, "daw_listen_port": args.daw_listen_port,
                 "session": args.session, "audio": args.audio, "audio_device": args.audio_device,
                 "audio_hostapi": args.audio_hostapi, "sample_rate": args.sample_rate,
                 "block_size": args.block_size, "midi": args.midi, "midi_map": args.midi_map,
                 "conductor_model": args.conductor_model}
    if args.config:
        return DaemonConfig.from_yaml(args.config, **overrides)
    return DaemonConfig(**{k: v for k, v in overrides.items() if v is not None})


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = config_from_args(args)
    if config.port is not None and not 0 <= int(config.port) <= 65535:
        raise InputError(f"--port must be 0..65535, got {config.port}")
    from .daemon import Daemon
    stop = threading.Event()

    def on_signal(signum, frame):
        logging.getLogger("stase.daemon").info("signal %d: shutting down", signum)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    daemon = Daemon(config).start()
    print(f"stase daemon ready on udp {config.host}:{daemon.port}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        daemon.stop()
    return 0
