"""stase's deterministic spatial renderer (``stase.dsp``).

The plan, conventions, errors and audio I/O it renders with live one layer down, in
:mod:`stase.core`; ``stase render`` is :mod:`stase.cli.render`.

Modules
-------
hrtf          SOFA HRTF sets (MIT KEMAR shipped in ``data/``), resampling, interpolation
kernels       numba kernels: fractional delay, Brown-Duda head shadow, constant-power pan
scene_kernel  numba kernels of the block-streaming scene (partitioned HRIR filtering)
distance      1/r level, ISO 9613-1 air absorption, reverb send (direct-to-reverberant balance)
convolution   zero-latency non-uniform partitioned convolution
fdn           Jot feedback delay network reverb
brir, rooms   the ten room presets' binaural room responses (cached) and ``RoomReverb``
scene         ``SceneRenderer``: add/move/remove sources, any block size
offline       ``render_plan``: stems + plan -> binaural or stereo mix with a level report
"""
