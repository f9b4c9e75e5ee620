"""The daemon and DAW bridge: OSC (REAPER, Ardour, our scripts), MIDI, live audio, session state.

Also home of the ``stase`` command line (:mod:`bridge.cli`), the user's bridge to every part.
"""
