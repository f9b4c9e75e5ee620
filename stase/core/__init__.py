"""The lowest layer (``stase.core``): what every other part of stase shares.  It imports nothing
of stase above it.

Modules
-------
errors        ``StaseError`` (backend failures) and ``InputError`` (user mistakes)
conventions   coordinate convention (azimuth 0 = front, positive = left), units, constants
placement     the one placement schema: fields, bounds, limits, and their problems
schemas       the JSON Schemas (placement.schema.json, plan.schema.json) and their checker
plan          the spatial plan (room + sources) shared by conductor, renderer and daemon
audio_io      WAV reading/writing with clear errors, stem folders, atomic text writes
rates         the one sample-rate check and the one resampler
names         the one track-name rule ("Gtr L" = "Gtr_L" = "gtr-l")
paths         the one user cache folder rule ($STASE_CACHE, XDG)
parallel      run one function over many jobs: in process, a process pool, or Ray
"""
