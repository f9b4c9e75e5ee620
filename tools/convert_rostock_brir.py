"""Convert the CC0 seminar-room BRIRs into stase's measured room ``seminar_measured`` (run once).

    python tools/convert_rostock_brir.py [--source ../shared/data/brir_rostock_seminar]
                                         [--out dsp/data/seminar_measured_brir.npz]

Input: ``brir_kemar_seminar_6m3.npz`` (44.1 kHz; a KEMAR dummy head in a seminar room, RT60
0.57 s, a studio loudspeaker 6.3 m away at 0, +-40 and +-80 deg; ``ir_<az>`` as (samples, 2)).
Released under CC0 1.0 (``SOURCE_README.md`` of that folder; issue 15).

Per direction:

* the onset is the first sample within 20 dB of the peak over both ears (as
  ``stase.dsp.rooms.load_rir_file``); the response starts there and its first 2.5 ms, the direct sound
  (the scene renders its own), are removed with a 1 ms fade;
* it is trimmed to :data:`KEEP_S`; what is cut (printed) holds 53-58 dB less energy than the whole
  response: the measurement's noise floor (at RT60 0.57 s the room itself is 95 dB down by then).

Level: the stored responses are relative to the direct sound at 1 m of a head whose diffuse-field
energy in the 500 Hz-1 kHz octaves is 1, as the simulated rooms (``stase.dsp.brir``).  One factor for
all directions makes the measured direct sound (its first 2.5 ms) carry, in the 500 Hz-8 kHz band
and averaged over the five directions and both ears, the energy of stase's own direct sound at
6.3 m: the MIT KEMAR HRIR (``stase.dsp.hrtf``) over 6.3 m, cut to the same 2.5 ms, divided by the root
of its diffuse-field mid-band energy (``stase.dsp.brir.head_mid_band_energy``).  The scene then
reproduces the measured direct-to-reverberant balance at 6.3 m for a loudspeaker-like source.

Output (float16 samples scaled by ``scale``, about 0.9 MB): ``responses`` (5, 2, n),
``azimuths_deg``, ``sample_rate``, ``distance_m``, ``rt60_s``, ``source_role`` ("loudspeaker"),
``attribution``; and ``seminar_measured_brir.SOURCE.md`` beside it.
"""
from __future__ import annotations

import argparse
import io
import math
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SOURCE_DIR = ROOT.parent / "shared" / "data" / "brir_rostock_seminar"
SOURCE_FILE = "brir_kemar_seminar_6m3.npz"
OUT = ROOT / "dsp" / "data" / "seminar_measured_brir.npz"
KEYS = {-80.0: "m80", -40.0: "m40", 0.0: "0", 40.0: "p40", 80.0: "p80"}
DIRECT_S = 0.0025
FADE_S = 0.001
KEEP_S = 0.9
LEVEL_BAND_HZ = (500.0, 8000.0)
ATTRIBUTION = ("Seminar-room BRIRs (KEMAR, studio loudspeaker at 6.3 m, RT60 0.57 s), "
               "../shared/data/brir_rostock_seminar/brir_kemar_seminar_6m3.npz, CC0 1.0 "
               "(https://creativecommons.org/publicdomain/zero/1.0/); converted by "
               "tools/convert_rostock_brir.py")


def onset(ir: np.ndarray) -> int:
    envelope = np.max(np.abs(ir), axis=0)
    return int(np.argmax(envelope >= 0.1 * envelope.max()))


def band_energy(ir: np.ndarray, rate: int) -> float:
    from scipy.signal import butter, sosfilt
    sos = butter(4, LEVEL_BAND_HZ, btype="band", fs=rate, output="sos")
    padded = np.concatenate([ir, np.zeros((ir.shape[0], rate // 20))], axis=1)
    return float(np.mean(np.sum(sosfilt(sos, padded, axis=1) ** 2, axis=1)))


def convert(source: Path, out: Path) -> dict:
    from stase.dsp.brir import head_mid_band_energy
    from stase.dsp.hrtf import load_hrtf
    with np.load(source / SOURCE_FILE, allow_pickle=False) as data:
        rate = int(data["fs"])
        distance, rt60 = float(data["distance_m"]), float(data["rt60_s"])
        measured = {az: np.asarray(data["ir_" + key], dtype=np.float64).T for az, key in KEYS.items()}
    for az, ir in measured.items():
        if ir.shape[0] != 2:
            raise SystemExit(f"{SOURCE_FILE}: ir at {az:g} deg has {ir.shape[0]} channels, expected 2")
    hrtf = load_hrtf(sample_rate=rate)
    direct_n = int(round(DIRECT_S * rate))
    fade_n = int(round(FADE_S * rate))
    keep_n = int(round(KEEP_S * rate))
    responses, measured_direct, ours_direct, decay_db = [], [], [], []
    for az, ir in measured.items():
        start = onset(ir)
        h = ir[:, start:start + keep_n].copy()
        measured_direct.append(band_energy(h[:, :direct_n], rate))
        energy = np.sum(ir[:, start:] ** 2)
        decay_db.append(10 * math.log10(max(np.sum(ir[:, start + keep_n:] ** 2), 1e-300) / energy))
        h[:, :direct_n - fade_n] = 0.0
        h[:, direct_n - fade_n:direct_n] *= np.linspace(0.0, 1.0, fade_n)
        responses.append(h)
        ours = hrtf.hrir(az, 0.0)
        ours = ours[:, onset(ours):onset(ours) + direct_n] / distance
        ours_direct.append(band_energy(ours, rate))
    factor = math.sqrt(np.mean(ours_direct) / head_mid_band_energy(hrtf) / np.mean(measured_direct))
    stack = np.stack(responses) * factor
    scale = float(np.max(np.abs(stack)))
    half = (stack / scale).astype(np.float16)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, responses=half, scale=np.float64(scale),
                        azimuths_deg=np.array(sorted(KEYS), dtype=np.float64),
                        sample_rate=np.int64(rate), distance_m=np.float64(distance),
                        rt60_s=np.float64(rt60), source_role=np.array("loudspeaker"),
                        attribution=np.array(ATTRIBUTION))
    _atomic_write(out, buffer.getvalue())
    _atomic_write(out.with_suffix(".SOURCE.md"), SOURCE_NOTE.encode())
    return {"out": str(out), "bytes": out.stat().st_size, "level_factor": factor,
            "energy_cut_db": [round(d, 1) for d in decay_db],
            "float16_max_error": float(np.max(np.abs(half.astype(np.float64) * scale - stack)))}


def _atomic_write(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
        os.chmod(tmp, 0o644)  # a data file of the repository, not a private temp file
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


SOURCE_NOTE = """# seminar_measured_brir.npz: where it comes from

Binaural room impulse responses of a seminar room (RT60 0.57 s), measured with a KEMAR dummy head
and a studio loudspeaker 6.3 m away at 0, +-40 and +-80 degrees azimuth, 44.1 kHz.

* Source: `../shared/data/brir_rostock_seminar/brir_kemar_seminar_6m3.npz` (its folder's
  `SOURCE_README.md`).
* Licence: CC0 1.0 Universal, public domain dedication
  (https://creativecommons.org/publicdomain/zero/1.0/).
* Converted by `tools/convert_rostock_brir.py`: direct sound (first 2.5 ms after the onset)
  removed, trimmed to 0.9 s, level set relative to stase's own direct sound at 6.3 m, stored as
  float16 with one scale factor.  Selected in stase as the room `seminar_measured`.
"""


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--source", type=Path, default=SOURCE_DIR)
    p.add_argument("--out", type=Path, default=OUT)
    a = p.parse_args(argv)
    print(convert(a.source, a.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
