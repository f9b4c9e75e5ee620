"""The advisor on real music: a Bach chorale and a Haydn quartet excerpt rendered one stem per
part through FluidSynth (the bench's own code path, bench/realistic_multitracks.py), the
ensemble-aware priors, the consensus anchor, and the tuning / held-out split.

The rendering tests need FluidSynth with a General MIDI SoundFont (``apt-get install fluidsynth
fluid-soundfont-gm``; tools/setup.sh does it when root) and music21 (the ``dev`` extra); they
skip, saying which is missing, without them.
"""
from __future__ import annotations

import numpy as np
import pytest

from stase.agent.advisor import advise
from stase.agent.advisor.analysis import analyse_stems
from stase.agent.advisor.anchor import consensus_anchor
from stase.agent.advisor.ensembles import PART_TARGETS, ensemble_parts
from stase.agent.advisor.priors import prior_gains, resolve_roles
from stase.agent.music import sampled
from bench import realistic_multitracks as rm

RATE = 16_000
SECONDS = 6.0
HAVE_FLUIDSYNTH = sampled.find_fluidsynth() is not None and sampled.find_soundfont() is not None


def _render(tmp_path_factory, piece_id: str, ensemble: str) -> dict[str, np.ndarray]:
    """A few bars of a corpus score, one stem per part, through the bench's render path."""
    if not HAVE_FLUIDSYNTH:
        pytest.skip(f"FluidSynth or a General MIDI SoundFont is not installed ({sampled.INSTALL_HINT})")
    pytest.importorskip("music21", reason="music21 (the dev extra) holds the score corpus")
    score = rm._corpus_root() / f"{piece_id}.mxl"
    voices = sampled.FluidSynthVoices(sampled.find_fluidsynth(), sampled.find_soundfont(),
                                      sampled.fluidsynth_version(sampled.find_fluidsynth()), workers=1)
    folder = tmp_path_factory.mktemp(piece_id.replace("/", "_"))
    manifest = rm.render_piece(piece_id, ensemble, score, folder, voices, RATE, SECONDS)
    assert "skip" not in manifest, manifest
    from stase.core.audio_io import read_audio
    return {t: read_audio(folder / manifest["files"][t])[0][0] for t in manifest["tracks"]}


@pytest.fixture(scope="module")
def chorale(tmp_path_factory):
    return _render(tmp_path_factory, "bach/bwv110.7", "choir")


@pytest.fixture(scope="module")
def quartet(tmp_path_factory):
    return _render(tmp_path_factory, "haydn/opus1no1/movement1", "string_quartet")


def _gains(result):
    return {t["track"]: t["gain_db"] for t in result["tracks"]}


def test_chorale_renders_one_audible_stem_per_voice(chorale):
    assert sorted(chorale) == sorted(rm.CHORALE_PARTS)
    for track, x in chorale.items():
        assert x.shape == (int(SECONDS * RATE),)
        assert np.sqrt(np.mean(x ** 2)) > 1e-3, f"{track} is (nearly) silent"


def test_differential_recovers_a_part_pushed_up_6_db(chorale):
    pushed = {t: x * np.float32(10 ** (6.0 / 20)) if t == "Alto" else x for t, x in chorale.items()}
    gains = _gains(advise(pushed, RATE, reference=chorale))
    np.testing.assert_allclose(gains["Alto"], -6.0, atol=0.5)
    for track in ("Soprano", "Tenor", "Bass"):
        np.testing.assert_allclose(gains[track], 0.0, atol=0.5)


def test_prior_recovers_a_part_pushed_up_6_db(chorale):
    pushed = {t: x * np.float32(10 ** (6.0 / 20)) if t == "Tenor" else x for t, x in chorale.items()}
    gains = _gains(advise(pushed, RATE))
    np.testing.assert_allclose(gains["Tenor"], -6.0, atol=1.5)
    assert all(abs(gains[t]) <= 2.0 for t in ("Soprano", "Alto", "Bass")), gains


def test_prior_does_not_pull_the_chorale_melody_down(chorale):
    result = advise(chorale, RATE)
    soprano = next(t for t in result["tracks"] if t["track"] == "Soprano")
    assert result["mode"] == "prior"
    assert soprano["gain_db"] >= -2.0, soprano
    assert any("carries the melody" in r for r in soprano["reasons"])
    assert any("tuning pieces" in r for r in soprano["reasons"])  # the target says where it is from


def test_prior_on_a_quartet_keeps_the_first_violin_up_and_the_cello_where_it_is(quartet):
    # the complaint: equal loudness told the cello up ~5 dB and the first violin down
    gains = _gains(advise(quartet, RATE))
    assert gains["Violin 1"] >= -2.0, gains
    assert gains["Cello"] <= 2.0, gains


def test_equal_loudness_would_have_moved_the_quartet(quartet):
    """The defect the ensemble targets fix, measured on the same excerpt: the old prior (equal
    loudness for every non-vocal track) moves a part by more than 2 dB here."""
    a = analyse_stems(quartet, RATE)
    loudness = {t: s.integrated_lufs for t, s in a.stems.items()}
    centre = float(np.median(list(loudness.values())))
    assert max(abs(centre - v) for v in loudness.values()) > 2.0, loudness


# -- ensembles and roles, on synthetic tones (no FluidSynth needed) --------------------------------

def _tones(freqs: dict[str, float], rate: int = 16_000, seconds: float = 2.0) -> dict[str, np.ndarray]:
    t = np.arange(int(rate * seconds)) / rate
    return {name: (0.1 * np.sin(2 * np.pi * f * t)).astype(np.float32) for name, f in freqs.items()}


def test_ensemble_recognised_by_names():
    stems = _tones({"Soprano": 660, "Alto": 440, "Tenor": 330, "Bass": 130})
    a = analyse_stems(stems, 16_000)
    ensemble, parts, how = ensemble_parts(a, stems, resolve_roles(stems))
    assert ensemble == "choir"
    assert parts == {"Soprano": "soprano", "Alto": "alto", "Tenor": "tenor", "Bass": "bass"}
    assert set(how.values()) == {"name"}
    quartet = _tones({"1st Violin": 660, "Violin II": 440, "Viola": 330, "Violoncello": 130})
    a = analyse_stems(quartet, 16_000)
    ensemble, parts, _ = ensemble_parts(a, quartet, resolve_roles(quartet))
    assert ensemble == "string_quartet"
    assert parts == {"1st Violin": "violin1", "Violin II": "violin2", "Viola": "viola", "Violoncello": "cello"}


def test_a_band_with_a_bass_is_not_a_choir():
    stems = _tones({"Vocal": 440, "Backing Vox": 330, "Bass": 80})
    a = analyse_stems(stems, 16_000)
    assert ensemble_parts(a, stems, resolve_roles(stems)) is None
    gains, details = prior_gains(a, resolve_roles(stems))
    assert {d["kind"] for d in details.values()} == {"lar", "equal_loudness"}


def test_unnamed_choir_parts_are_assigned_by_register():
    stems = _tones({"Choir 3": 330, "Choir 1": 660, "Choir 4": 130, "Choir 2": 440})
    a = analyse_stems(stems, 16_000)
    ensemble, parts, how = ensemble_parts(a, stems, {t: "choir" for t in stems})
    assert ensemble == "choir"
    assert parts == {"Choir 1": "soprano", "Choir 2": "alto", "Choir 3": "tenor", "Choir 4": "bass"}
    assert set(how.values()) == {"register"}


def test_prior_closed_form_on_tones():
    """Tones set to the choir targets plus one part 5 dB low: that part alone is told +5 dB."""
    targets = PART_TARGETS["choir"]
    freqs = {"Soprano": 660, "Alto": 440, "Tenor": 330, "Bass": 130}
    level = {"Soprano": 0.0, "Alto": 0.0, "Tenor": -5.0, "Bass": 0.0}
    raw = _tones(freqs)
    a0 = analyse_stems(raw, 16_000)
    stems = {t: x * np.float32(10 ** ((-20.0 - a0.stems[t].integrated_lufs + targets[t.lower()].target_lu
                                       + level[t]) / 20)) for t, x in raw.items()}
    gains, details = prior_gains(analyse_stems(stems, 16_000), resolve_roles(stems))
    np.testing.assert_allclose(gains["Tenor"], 5.0, atol=0.05)
    assert gains["Soprano"] == gains["Alto"] == gains["Bass"] == 0.0
    assert details["Tenor"]["n_agree"] == 3


# -- the consensus anchor ----------------------------------------------------------------------

def test_consensus_anchor_follows_the_agreeing_group():
    anchor, agree = consensus_anchor([0.0, 0.0, 6.0, 8.0], 0.5)
    assert anchor == pytest.approx(0.0, abs=0.011)
    assert agree.tolist() == [True, True, False, False]
    # two groups of two: the tighter one (0.1 apart, against 2 dB apart) sets the anchor
    anchor, agree = consensus_anchor([6.0, 0.1, 0.0, 7.0], 1.5)
    assert anchor == pytest.approx(0.05, abs=0.011) and agree.tolist() == [False, True, True, False]
    # nobody agrees: the track nearest the median (as the median anchor would)
    anchor, agree = consensus_anchor([-6.0, 0.4, 3.0, 9.0], 0.5)
    assert anchor in (pytest.approx(0.4, abs=0.011), pytest.approx(3.0, abs=0.011))
    assert agree.sum() == 1


def test_differential_leaves_unmoved_tracks_alone_when_two_move_the_same_way(chorale):
    pushed = {t: x * np.float32(10 ** ({"Soprano": 6.0, "Alto": 8.0}.get(t, 0.0) / 20))
              for t, x in chorale.items()}
    gains = _gains(advise(pushed, RATE, reference=chorale))
    np.testing.assert_allclose([gains["Tenor"], gains["Bass"]], [0.0, 0.0], atol=0.1)  # median: -3.5
    np.testing.assert_allclose([gains["Soprano"], gains["Alto"]], [-6.0, -8.0], atol=0.3)


# -- the split -------------------------------------------------------------------------------------

def test_split_is_deterministic_by_work_and_disjoint():
    ids = ["bach/bwv10.7", "bach/bwv10.2", "haydn/opus74no1/movement1", "haydn/opus74no1/movement4",
           "mozart/k80/movement2", "beethoven/opus18no4"]
    first = {i: rm.split_of(i) for i in ids}
    assert first == {i: rm.split_of(i) for i in ids}
    assert set(first.values()) <= {"tuning", "heldout"}
    assert first["bach/bwv10.7"] == first["bach/bwv10.2"]            # one cantata, one split
    assert first["haydn/opus74no1/movement1"] == first["haydn/opus74no1/movement4"]
    works = [f"bach/bwv{n}" for n in range(1, 400)]
    tuning = {w for w in works if rm.split_of(w) == "tuning"}
    heldout = {w for w in works if rm.split_of(w) == "heldout"}
    assert tuning.isdisjoint(heldout) and tuning | heldout == set(works)
    assert 0.2 < len(heldout) / len(works) < 0.4                     # HELDOUT_SHARE = 0.3


def test_cache_lives_in_the_user_cache_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("STASE_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert rm.set_folder().is_relative_to(tmp_path / "stase")
    assert rm.load_sets() == []                                      # nothing built there


def test_loader_keeps_the_splits_apart(monkeypatch, tmp_path):
    """load_sets returns a piece only under the split its work hashes to, even if a manifest on
    disk says otherwise (a cache built under another split rule must not leak held-out pieces)."""
    import json

    from stase.core.audio_io import write_audio
    monkeypatch.setenv("STASE_CACHE", str(tmp_path))
    root = rm.set_folder()
    ids = {split: next(f"bach/bwv{n}.1" for n in range(1, 999) if rm.split_of(f"bach/bwv{n}.1") == split)
           for split in ("tuning", "heldout")}
    tone = (0.1 * np.sin(np.arange(rm.RATE) * 0.05)).astype(np.float32)
    for split, piece in ids.items():
        for claimed in (split, "tuning" if split == "heldout" else "heldout"):
            folder = root / f"{piece.replace('/', '__')}_{claimed}"
            folder.mkdir(parents=True)
            write_audio(folder / "a.flac", tone, rm.RATE, subtype="PCM_16")
            (folder / "manifest.json").write_text(json.dumps(
                {"piece": piece, "split": claimed, "ensemble": "choir", "rate": rm.RATE,
                 "tracks": ["A"], "files": {"A": "a.flac"}}))
    for split, piece in ids.items():
        loaded = rm.load_sets(split)
        assert [p["piece"] for p in loaded] == [piece]
        assert loaded[0]["split"] == split and loaded[0]["stems"]["A"].shape == (rm.RATE,)


# -- LMMS projects (no LMMS needed for these) --------------------------------------------------

def test_lmms_project_is_cut_to_its_first_seconds():
    import xml.etree.ElementTree as ET

    from bench import lmms_multitracks as lm
    # 120 bpm, 48 ticks a beat: 10 s = 20 beats = 960 ticks
    xml = ('<lmms-project><head bpm="120"/><song><trackcontainer>'
           '<track name="a"><instrumenttrack/><pattern pos="0"/><pattern pos="959"/><pattern pos="960"/></track>'
           '<track name="b"><bbtrack><trackcontainer><track><pattern pos="5000"/></track></trackcontainer>'
           '</bbtrack><bbtco pos="2000"/></track></trackcontainer></song></lmms-project>')
    tree = lm.cut_project(ET.ElementTree(ET.fromstring(xml)), 10.0)
    a, b = tree.getroot().findall("song/trackcontainer/track")
    assert [p.get("pos") for p in a.findall("pattern")] == ["0", "959"]
    assert b.find("bbtco") is None
    assert b.find("bbtrack/trackcontainer/track/pattern") is not None   # a beat's own patterns stay


def test_lmms_window_is_where_most_tracks_play_and_names_are_unique(tmp_path):
    from bench import lmms_multitracks as lm
    rate = 1000
    loud = np.ones((2, 10 * rate), np.float32) * 0.1
    quiet = np.zeros((2, 10 * rate), np.float32)
    # track a plays throughout, track b only in seconds 6..9
    b = quiet.copy()
    b[:, 6 * rate:] = 0.1
    assert lm.best_window({"a": loud, "b": b}, rate, 4.0) == 6 * rate
    names = lm._track_names([tmp_path / "1_Default preset.wav", tmp_path / "2_Default preset.wav",
                             tmp_path / "3_kick01.ogg.wav"])
    assert names == ["Default preset", "Default preset 2", "kick01"]
