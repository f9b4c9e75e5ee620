"""stase: a spatial-mixing assistant beside your DAW (words -> spatial plan -> binaural render,
listen-back and gain advice).

One import namespace over the design card's top-level folders (``pyproject.toml`` maps them with
``package-dir``; the folders stay where the design card puts them)::

    stase.core          stase/core/     errors, conventions, placement + plan, audio I/O, paths
    stase.presets       presets/        rooms, stage templates, lexicon (YAML) and their schema
    stase.dsp           dsp/            the deterministic renderer
    stase.agent         agent/          conductor, stem generator, gain advisor, listener
    stase.bridge        bridge/         daemon: OSC, MIDI, live audio, session state
    stase.onnx_models   onnx_models/    listener training, data generator, export (+ the .onnx)
    stase.cli           stase/cli/      the ``stase`` command line, one module per subcommand

Layers import downwards only (``core`` < ``presets`` < ``dsp`` < ``agent`` < ``bridge`` <
``onnx_models`` (training) < ``cli``); the ``[tool.importlinter]`` contracts in pyproject.toml
state it and ``tests/test_layers.py`` checks it.  ``bench/`` and ``tools/`` are not installed.
"""
from __future__ import annotations

__all__: list[str] = []
