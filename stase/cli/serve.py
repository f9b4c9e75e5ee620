"""``stase serve``: run the daemon in the foreground until SIGINT/SIGTERM.

Logs go to stderr.  Flags override the YAML ``--config`` file, which overrides the defaults of
:class:`stase.bridge.daemon.DaemonConfig`.  :func:`check_config` refuses, before anything is opened or
written, what cannot work: an empty ``--host`` or ``--daw-host`` (an unset ``$STASE_HOST``
would otherwise bind every interface).  Types and ranges (ports 0..65535, sample rate, block
size) are checked where the settings are defined, by :class:`stase.bridge.daemon.DaemonConfig`; its
``InputError`` reaches the command line the same way.  ``--stems DIR`` sets the session's stems
folder at start (the daemon's ``stems`` verb) and allows DIR like ``--allow-dir DIR``.
``--head-tracking PORT`` opens a head tracker's OSC port (:mod:`stase.bridge.head_tracking`);
``--connect-ardour`` wires each Ardour track's JACK outputs into the live monitor
(:mod:`stase.bridge.jack_routing`); ``--engine process|thread`` runs the monitor's audio callback
in its own process (:mod:`stase.bridge.rt_engine`) or in the daemon's; ``--jobs process|inline``
computes ``listen`` and ``advise`` in one lower-priority job process
(:mod:`stase.bridge.job_process`) or on the daemon's job thread.  The
daemon has no authentication: a bind address that is not loopback is logged as a loud warning
(:class:`stase.bridge.osc_transport.OscEndpoint`) and said again on the "ready" line.
"""
from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path

from stase.core.errors import InputError


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
    parser.add_argument("--connect-ardour", dest="connect_ardour", action="store_true", default=None,
                        help="with --audio on JACK: connect each Ardour track's outputs to the "
                             "monitor's input for that track (implies --audio-hostapi JACK)")
    parser.add_argument("--engine", choices=("process", "thread"), default=None,
                        help="where the live monitor's audio callback runs: its own process "
                             "(shared memory; the daemon's jobs cannot delay it) or a thread of "
                             "the daemon (default: process)")
    parser.add_argument("--jobs", choices=("process", "inline"), default=None,
                        help="where listen and advise compute: one job process at a lower "
                             "priority (the daemon's replies never wait behind it) or the "
                             "daemon's own job thread (default: process)")
    parser.add_argument("--sample-rate", type=int, default=None)
    parser.add_argument("--block-size", type=int, default=None)
    parser.add_argument("--head-tracking", dest="head_tracking_port", type=int, default=None,
                        metavar="PORT",
                        help="UDP port for a head tracker's OSC (SPARTA /ypr, /yaw, /pitch, /roll, "
                             "/quaternion; ADM-OSC /adm/lis/ypr): the live scene turns with the head")
    parser.add_argument("--midi", action="store_true", default=None,
                        help="open virtual MIDI in/out ports for CC control")
    parser.add_argument("--midi-map", default=None, help="YAML CC mapping (default: built-in)")
    parser.add_argument("--conductor-model", default=None, help='"auto", "none", "smollm2", "smollm2-agent" (the shipped LoRA), "gemma" or a GGUF path')
    parser.add_argument("--allow-dir", dest="allow_dirs", action="append", default=None, metavar="DIR",
                        help="a folder whose files requests may name (stems, reference stems, binaural "
                             "files, room responses); repeatable, added to the config file's allow_dirs; "
                             "the session file's folder is always allowed")
    parser.add_argument("--stems", default=None, metavar="DIR",
                        help="the tracks' audio files (one mono file per track, named like the tracks) "
                             "for advise and listen; DIR is also allowed like --allow-dir DIR")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def config_from_args(args: argparse.Namespace):
    from stase.bridge.daemon import DaemonConfig
    overrides = {"port": args.port, "host": args.host, "daw": args.daw, "daw_host": args.daw_host,
                 "daw_port": args.daw_port, "daw_listen_port": args.daw_listen_port,
                 "session": args.session, "audio": args.audio, "audio_device": args.audio_device,
                 "audio_hostapi": args.audio_hostapi, "sample_rate": args.sample_rate,
                 "block_size": args.block_size, "midi": args.midi, "midi_map": args.midi_map,
                 "head_tracking_port": getattr(args, "head_tracking_port", None),
                 "connect_ardour": getattr(args, "connect_ardour", None),
                 "engine": getattr(args, "engine", None), "jobs": getattr(args, "jobs", None),
                 "conductor_model": args.conductor_model}
    if args.allow_dirs and args.config:
        # flags add to the config file's list instead of replacing it
        base = DaemonConfig.from_yaml(args.config).allow_dirs
        overrides["allow_dirs"] = [*base, *args.allow_dirs]
    else:
        overrides["allow_dirs"] = args.allow_dirs
    if getattr(args, "stems", None):
        # naming the stems on the command line allows their folder (the operator chose it)
        base = overrides["allow_dirs"] or (DaemonConfig.from_yaml(args.config).allow_dirs if args.config else [])
        overrides["allow_dirs"] = [*base, args.stems]
    if overrides["connect_ardour"] and not overrides["audio_hostapi"]:
        overrides["audio_hostapi"] = "JACK"  # the routing is JACK's: the monitor must be there
    if args.config:
        return DaemonConfig.from_yaml(args.config, **overrides)
    return DaemonConfig(**{k: v for k, v in overrides.items() if v is not None})


def check_config(config) -> None:
    """Refuse an empty ``host`` or ``daw_host`` (one ``InputError`` naming both if need be)."""
    from stase.bridge.osc_transport import check_host
    problems: list[str] = []
    for value, what, bind in ((config.host, "--host (the address to listen on)", True),
                              (config.daw_host, "--daw-host (the DAW's address)", False)):
        try:
            check_host(value, what, bind=bind)
        except InputError as exc:
            problems.append(str(exc))
    if problems:
        raise InputError("; ".join(problems))


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = config_from_args(args)
    check_config(config)  # before the daemon opens its session file or any port
    stems = getattr(args, "stems", None)
    if stems is not None and not Path(stems).expanduser().is_dir():
        raise InputError(f"--stems {stems}: not a folder (give the folder of the tracks' audio files)")
    from stase.bridge.daemon import Daemon
    stop = threading.Event()

    def on_signal(signum, frame):
        logging.getLogger("stase.daemon").info("signal %d: shutting down", signum)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    daemon = Daemon(config).start()
    if stems is not None:
        try:
            daemon.verb_stems({"stems_dir": str(Path(stems).expanduser())})
        except BaseException:
            daemon.stop()
            raise
    from stase.bridge.osc_transport import NO_AUTH_WARNING, is_loopback
    note = "" if is_loopback(config.host) else f" (NOT loopback: {NO_AUTH_WARNING})"
    print(f"stase daemon ready on udp {config.host}:{daemon.port}{note}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        daemon.stop()
    return 0
