"""stase's deterministic spatial renderer.

Modules
-------
conventions  coordinate convention (azimuth 0 = front, positive = left), units, constants
errors       ``StaseError`` (backend failures) and ``InputError`` (user mistakes)
plan         the spatial plan (room + sources) shared by conductor, renderer and daemon
audio_io     WAV reading/writing with clear errors, stem folders
"""
