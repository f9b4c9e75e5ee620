"""The daemon and DAW bridge: OSC (REAPER, Ardour, our scripts), MIDI, live audio, session state.

The ``stase`` command line that starts it is :mod:`stase.cli` (``stase serve``, ``stase client``).
"""
