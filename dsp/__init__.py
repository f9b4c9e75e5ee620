"""stase's deterministic spatial renderer.

Modules
-------
conventions   coordinate convention (azimuth 0 = front, positive = left), units, constants
errors        ``StaseError`` (backend failures) and ``InputError`` (user mistakes)
plan          the spatial plan (room + sources) shared by conductor, renderer and daemon
audio_io      WAV reading/writing with clear errors, stem folders, atomic text writes
hrtf          SOFA HRTF sets (MIT KEMAR shipped in ``data/``), resampling, interpolation
kernels       numba kernels: fractional delay, Brown-Duda head shadow, constant-power pan
scene_kernel  numba kernels of the block-streaming scene (partitioned HRIR filtering)
distance      1/r level, ISO 9613-1 air absorption, reverb send (direct-to-reverberant balance)
convolution   zero-latency non-uniform partitioned convolution
fdn           Jot feedback delay network reverb
brir, rooms   the ten room presets' binaural room responses (cached) and ``RoomReverb``
scene         ``SceneRenderer``: add/move/remove sources, any block size
offline       ``render_plan``: stems + plan -> binaural or stereo mix with a level report
cli_render    ``stase render``
"""
