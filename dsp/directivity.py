"""Source directivity by role: how much of a source's sound feeds the room, not the listener.

Holds
-----
ROLE_DIRECTIVITY     {role: Directivity(q, source)} for the 24 stase roles and the loudspeaker
DEFAULT_Q            Q of a source with no (or an unknown) role
LOUDSPEAKER_ROLE     the role name of a studio loudspeaker (the measured seminar room's source)
directivity_q(role)  Q of a role (``DEFAULT_Q`` when unknown)
send_scale(role, reference_q=1.0)  amplitude factor of the reverb send, ``sqrt(reference_q / Q)``

Model
-----
A source's directivity factor Q is its on-axis intensity divided by the intensity an
omnidirectional source of the same total power gives (the directivity index is ``10 log10 Q``).
The direct sound a listener in front of the source hears is its on-axis sound, which the plan's
gain and distance set; the room is fed by the total power, which is ``1/Q`` of an omnidirectional
source's with that on-axis level.  So the reverberant energy falls by ``1/Q`` and the critical
distance grows to ``r_c = 0.057 sqrt(Q V / T60)`` (Sabine; Kuttruff, *Room Acoustics*, 5th ed.,
sec. 5.4, eq. 5.42 with the directivity factor).  The scene multiplies each source's reverb send
by :func:`send_scale`; a room response recorded with a directional source (the measured
seminar room: a loudspeaker) has ``reference_q`` of that source.

Figures
-------
Q is one number per role: the directivity averaged over the 500 Hz-4 kHz octaves, where both
the rooms' RT60 and the interaural level cues live.  Real sources become more directional with
frequency (a trumpet is nearly omnidirectional at 250 Hz and beams above 2 kHz); one broadband
factor is the simplification.  Values are rounded readings of published directivity patterns,
not fits: the instrument chapters of J. Meyer, *Acoustics and the Performance of Music*
(5th ed., Springer 2009, ch. 4 "The directional characteristics of musical instruments" and
ch. 5 for the singing voice), and J. Pätynen & T. Lokki, "Directivities of symphony orchestra
instruments", Acta Acustica united with Acustica 96 (2010) 138-167, for the orchestral roles.
Sources played through loudspeakers (electric guitar and bass amplifiers, synthesizers) take a
cone loudspeaker's directivity.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Directivity:
    """Directivity factor Q (on-axis / mean intensity, 500 Hz-4 kHz) and where it comes from."""

    q: float
    source: str


_MEYER = "Meyer 2009, ch. 4"
_MEYER_VOICE = "Meyer 2009, ch. 5 (singing voice: DI about 2-3 dB at 500 Hz-1 kHz, 5-6 dB at 2-4 kHz)"
_PATYNEN = "Pätynen & Lokki 2010"
_CONE = ("cone loudspeaker in a cabinet: omnidirectional below about 300 Hz, DI 6-10 dB above "
         "2 kHz (beaming of 25-30 cm drivers)")

#: Q of a source with no role, or a role not in the table: a typical acoustic instrument or voice.
DEFAULT_Q = 2.0
#: A compact two-way studio monitor, the source of the measured seminar room.
LOUDSPEAKER_ROLE = "loudspeaker"

ROLE_DIRECTIVITY: dict[str, Directivity] = {
    "lead_vocal": Directivity(2.5, _MEYER_VOICE),
    "backing_vocals": Directivity(2.5, _MEYER_VOICE),
    "choir": Directivity(2.5, _MEYER_VOICE + "; a choir facing the audience is at least as directional"),
    "drums": Directivity(1.5, _MEYER + " (drum heads and cymbals radiate broadly, DI 1-3 dB)"),
    "percussion": Directivity(1.5, _MEYER + " (timpani and mallet instruments, DI 1-3 dB)"),
    "hand_drums": Directivity(1.5, _MEYER + " (membranes radiate broadly)"),
    "bass": Directivity(2.0, _CONE + "; most of a bass's energy lies below 500 Hz"),
    "double_bass": Directivity(1.5, _MEYER + "; " + _PATYNEN + " (nearly omnidirectional below 200 Hz)"),
    "electric_guitar": Directivity(3.0, _CONE),
    "acoustic_guitar": Directivity(1.6, _MEYER + " (top plate radiates forward above 500 Hz)"),
    "piano": Directivity(2.5, _MEYER + " (grand piano, open lid reflects mid and high frequencies to the audience)"),
    "organ": Directivity(1.5, _MEYER + " (a large, distributed source)"),
    "synth_lead": Directivity(4.0, "played through loudspeakers: the studio monitor's Q"),
    "synth_pad": Directivity(4.0, "played through loudspeakers: the studio monitor's Q"),
    "violins": Directivity(2.0, _MEYER + "; " + _PATYNEN + " (DI about 1 dB below 500 Hz, 4-6 dB at 2-4 kHz)"),
    "violas": Directivity(2.0, _MEYER + "; " + _PATYNEN),
    "cellos": Directivity(2.0, _MEYER + "; " + _PATYNEN),
    "strings": Directivity(2.0, _MEYER + "; " + _PATYNEN + " (as the string sections)"),
    "brass": Directivity(3.0, _MEYER + "; " + _PATYNEN + " (trumpets and trombones beam from the bell; horns face backwards)"),
    "trumpet": Directivity(3.5, _MEYER + "; " + _PATYNEN + " (bell: DI about 2 dB at 500 Hz, 6 dB at 2 kHz, 10 dB above 4 kHz)"),
    "saxophone": Directivity(2.0, _MEYER + " (tone holes and bell share the radiation)"),
    "woodwinds": Directivity(1.6, _MEYER + "; " + _PATYNEN + " (radiation from the open tone holes is broad)"),
    "flute": Directivity(1.6, _MEYER + " (embouchure hole and open tone holes)"),
    "plucked": Directivity(1.6, _MEYER + " (as the guitar and lute family)"),
    LOUDSPEAKER_ROLE: Directivity(4.0, "compact two-way studio monitor: DI about 3-4 dB at 500 Hz rising "
                                       "to 8-10 dB at 4 kHz (typical of such monitors' published "
                                       "directivity); Q = 4 (DI 6 dB) over 500 Hz-4 kHz"),
}


def directivity_q(role: str | None) -> float:
    """Directivity factor Q of ``role`` (case-insensitive); :data:`DEFAULT_Q` when unknown or None."""
    if not isinstance(role, str):
        return DEFAULT_Q
    entry = ROLE_DIRECTIVITY.get(role.strip().lower())
    return DEFAULT_Q if entry is None else entry.q


def send_scale(role: str | None, reference_q: float = 1.0) -> float:
    """Amplitude factor of a source's reverb send: ``sqrt(reference_q / Q(role))``.

    ``reference_q`` is the Q of the source the room response was made with (1: the synthesized
    rooms assume an omnidirectional source; the measured room's loudspeaker otherwise).
    """
    return math.sqrt(float(reference_q) / directivity_q(role))
