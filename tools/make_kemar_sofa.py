"""Convert the MIT KEMAR HRIRs shipped in the ``slab`` wheel to a SOFA file (run once, committed).

Source data
-----------
Gardner, W. G. & Martin, K. D. (1995). "HRTF measurements of a KEMAR". J. Acoust. Soc. Am. 97(6),
3907-3908; MIT Media Lab Perceptual Computing Technical Report #280 (1994).  710 directions,
elevation -40..90 degrees, 512 taps at 44.1 kHz, measured at 1.4 m, "normal pinna" set (the
left-ear measurements mirrored for the right ear, so the set is left/right symmetric).  ``slab``
(Schoenwiesner lab, https://github.com/DrMarc/slab) ships a pickled copy converted from the SOFA
file of sofaconventions.org.

Convention check
----------------
slab's ``vertical_polar`` azimuth runs 0..360 degrees counter-clockwise seen from above: the
direction at azimuth 90 has Cartesian y = +1.4 m (left in SOFA's x-front/y-left/z-up frame) and
its channel 0 (slab's left ear) is the louder and earlier ear.  That is SOFA/AES69's positive-left
convention already, so we only wrap azimuth to (-180, 180]; the script asserts the check so a
future slab with another convention fails loudly instead of silently mirroring the scene.

Usage::

    .venv/bin/python tools/make_kemar_sofa.py [-o dsp/data/mit_kemar_normal_pinna.sofa]

Only this script imports slab (which imports sounddevice and so needs PortAudio:
``apt-get install libportaudio2``); the renderer reads the SOFA file with sofar.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "dsp" / "data" / "mit_kemar_normal_pinna.sofa"


def kemar_arrays() -> tuple[np.ndarray, np.ndarray, float]:
    """Return ``(ir (M, 2, N) float64, positions (M, 3) [az_deg, el_deg, r_m], sample_rate)``."""
    import slab  # noqa: PLC0415 - only this tool needs slab (and so PortAudio)

    hrtf = slab.HRTF.kemar()
    ir = np.stack([np.asarray(f.data, dtype=np.float64).T for f in hrtf.data])  # (M, ears, taps)
    polar = np.asarray(hrtf.sources.vertical_polar, dtype=np.float64)
    cart = np.asarray(hrtf.sources.cartesian, dtype=np.float64)
    check_convention(ir, polar, cart)
    az = np.mod(polar[:, 0] + 180.0, 360.0) - 180.0
    az[az == -180.0] = 180.0
    positions = np.column_stack([az, polar[:, 1], polar[:, 2]])
    return ir, positions, float(hrtf.samplerate)


def check_convention(ir: np.ndarray, polar: np.ndarray, cart: np.ndarray) -> None:
    """Assert that azimuth +90 is the listener's left (y > 0, ear 0 louder and earlier)."""
    left = np.flatnonzero(np.isclose(polar[:, 0], 90.0) & np.isclose(polar[:, 1], 0.0))
    right = np.flatnonzero(np.isclose(polar[:, 0], 270.0) & np.isclose(polar[:, 1], 0.0))
    if len(left) != 1 or len(right) != 1:
        raise SystemExit("slab KEMAR data: cannot find the +-90 degree horizontal directions")
    i, j = left[0], right[0]
    energy = (ir[i] ** 2).sum(axis=-1)
    onset = np.argmax(np.abs(ir[i]) > 0.1 * np.abs(ir[i]).max(), axis=-1)
    if not (cart[i, 1] > 0 > cart[j, 1] and energy[0] > 4 * energy[1] and onset[0] < onset[1]):
        raise SystemExit("slab KEMAR data: azimuth 90 is not on the left ear's side; "
                         "the convention of slab changed, fix the conversion")


def make_sofa(ir: np.ndarray, positions: np.ndarray, sample_rate: float):
    """Build a ``SimpleFreeFieldHRIR`` sofar object."""
    import sofar

    sofa = sofar.Sofa("SimpleFreeFieldHRIR")
    sofa.Data_IR = ir.astype(np.float64)
    sofa.Data_SamplingRate = float(sample_rate)
    sofa.Data_Delay = np.zeros((1, 2))
    sofa.SourcePosition = positions
    sofa.SourcePosition_Type = "spherical"
    sofa.SourcePosition_Units = "degree, degree, metre"
    # KEMAR's ear canals sit about 7.5 cm either side of the head centre (left = +y).
    sofa.ReceiverPosition = np.array([[0.0, 0.075, 0.0], [0.0, -0.075, 0.0]])
    sofa.GLOBAL_Title = "MIT KEMAR HRIRs, normal pinna"
    sofa.GLOBAL_DatabaseName = "MIT KEMAR"
    sofa.GLOBAL_ListenerShortName = "KEMAR"
    sofa.GLOBAL_Organization = "MIT Media Lab (measurements); converted for stase"
    sofa.GLOBAL_AuthorContact = "Bill Gardner, Keith Martin (measurements)"
    sofa.GLOBAL_License = ("The MIT KEMAR data may be used freely provided the source is cited "
                           "(Gardner & Martin 1995)")
    sofa.GLOBAL_References = ("Gardner, W. G. & Martin, K. D. (1995). HRTF measurements of a KEMAR. "
                              "J. Acoust. Soc. Am. 97(6), 3907-3908.")
    sofa.GLOBAL_Comment = ("Converted by stase tools/make_kemar_sofa.py from the copy in the slab "
                           "package; azimuth positive = left (AES69), wrapped to (-180, 180].")
    sofa.GLOBAL_History = "slab.HRTF.kemar() -> sofar SimpleFreeFieldHRIR"
    sofa.verify()
    return sofa


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    import sofar

    ir, positions, rate = kemar_arrays()
    sofa = make_sofa(ir, positions, rate)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    sofar.write_sofa(str(args.output), sofa, compression=9)
    size_mb = args.output.stat().st_size / 1e6
    print(f"wrote {args.output} ({ir.shape[0]} directions, {ir.shape[2]} taps, {rate:g} Hz, "
          f"{size_mb:.2f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
