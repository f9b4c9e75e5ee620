"""The ``stase`` command line.

Each subcommand ``NAME`` is the module ``stase.cli.NAME`` (``generate`` shares ``demo``), which
exposes ``add_arguments(parser)`` and ``run(args) -> int`` and calls the library that does the
work.  Modules are imported only when their
subcommand is used, so ``stase --help`` and file-only commands never touch PortAudio, a GPU or a
model.
"""
from __future__ import annotations

import argparse
import importlib
import sys

#: subcommand -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("stase.cli.demo", "text -> plan -> generated stems -> binaural mix, stage map and report"),
    "generate": ("stase.cli.demo", "like demo, for a prompt, into a folder of your choice"),
    "plan": ("stase.cli.plan", "turn a prompt into a spatial plan (JSON) for a list of tracks"),
    "render": ("stase.cli.render", "render a folder of mono stems with a plan to a binaural or stereo WAV"),
    "advise": ("stase.cli.advise", "gain-balance advice for a folder of stems"),
    "listen": ("stase.cli.listen", "hear where the source in a binaural WAV is (Spatial-AST)"),
    "serve": ("stase.cli.serve", "run the daemon that REAPER/Ardour and our scripts talk to"),
    "client": ("stase.cli.client", "send one request to a running daemon and print the reply"),
    "presets": ("stase.cli.presets", "list or verify the rooms, stage templates and instrument lexicon"),
}

EXIT_USAGE = 2
EXIT_FAILURE = 1


def build_parser(selected: str | None = None) -> argparse.ArgumentParser:
    """The top-level parser; only ``selected`` subcommand's module is imported."""
    parser = argparse.ArgumentParser(
        prog="stase",
        description="stase: a spatial-mixing assistant beside your DAW. Azimuth in degrees, "
                    "0 = front, positive = left; elevation positive up; distance in metres.",
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module, _name=name)
        if name == selected:
            importlib.import_module(module).add_arguments(p)
    return parser


def _version() -> str:
    try:
        from importlib.metadata import version
        return f"stase {version('stase')}"
    except Exception:  # noqa: BLE001 - not installed as a distribution
        return "stase (source tree)"


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``stase`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    selected = next((a for a in argv if not a.startswith("-")), None)
    if selected not in SUBCOMMANDS:
        selected = None
    parser = build_parser(selected)
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    from stase.core.errors import InputError, StaseError
    module = importlib.import_module(args._module)
    try:
        return int(module.run(args) or 0)
    except InputError as exc:
        print(f"stase {args._name}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except StaseError as exc:
        cause = f" (caused by {exc.__cause__!r})" if exc.__cause__ else ""
        print(f"stase {args._name}: failed: {exc}{cause}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader went away (`stase advise ... | head`): not an error of ours
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
