"""Writes tests/data/conductor_eval.jsonl, the labelled conductor eval set (hand-written prompts).

Run: python tests/data/make_conductor_eval.py  (the JSONL is committed; this script is how it was made)."""
import json
B = ["Vox", "Gtr L", "Gtr R", "Bass", "Drums", "Keys"]
J = ["Sax", "Tpt", "Piano", "Upright", "Drums"]
E = ["Kick", "Bass", "Lead", "Pad", "Perc", "Vox"]
O = ["Violins", "Violas", "Cellos", "Basses", "Winds", "Brass"]
W = ["Sitar", "Tabla", "Flute", "Vocal", "Shaker"]
S = ["Vox", "AcGtr"]
rows = []
def ex(prompt, tracks, expect, template=None, setup=None):
    r = {"kind": "edit" if setup else "explicit", "prompt": prompt, "tracks": tracks, "expect": expect}
    if template is not None: r["expected_template"] = template
    if setup: r["setup"] = setup
    rows.append(r)
def a(track, az, tol=2.0, dist=None, el=None, el_tol=5.0):
    d = {"track": track, "azimuth_deg": az, "tol_deg": tol}
    if dist is not None: d["distance_m"] = dist
    if el is not None: d["elevation_deg"] = el; d["el_tol_deg"] = el_tol
    return d
def d(track, dist): return {"track": track, "distance_m": dist}
def e(track, el, tol=5.0): return {"track": track, "elevation_deg": el, "el_tol_deg": tol}
# ---- explicit: degrees with sides
ex("put the sax 45 degrees to the right", J, [a("Sax", -45)])
ex("Sax 30° left, trumpet 30° right", J, [a("Sax", 30), a("Tpt", -30)])
ex("place the piano at azimuth 60", J, [a("Piano", 60)])
ex("bass at azimuth -60 please", B, [a("Bass", -60)])
ex("vocals dead centre, keys 70 degrees left", B, [a("Vox", 0), a("Keys", 70)])
ex("I want the guitars at ±45°", B, [a("Gtr L", 45), a("Gtr R", -45)])
ex("guitars panned plus or minus 60 degrees", B, [a("Gtr L", 60), a("Gtr R", -60)])
ex("move nothing else, but the keys go 25 degrees off to the right", B, [a("Keys", -25)])
ex("the upright bass twenty degrees left", J, [a("Upright", 20)])
ex("trumpet right by 35 degrees", J, [a("Tpt", -35)])
ex("pad at 110 degrees left so it wraps behind", E, [a("Pad", 110)])
ex("put the perc 150° right", E, [a("Perc", -150)])
# clock
ex("the sax at 2 o'clock", J, [a("Sax", -60)])
ex("trumpet at ten o'clock and piano at 3 o'clock", J, [a("Tpt", 60), a("Piano", -90)])
ex("drums at six o'clock", J, [a("Drums", 180)])
ex("lead synth at 11 o'clock, pad at 1 o'clock", E, [a("Lead", 30), a("Pad", -30)])
ex("vocal at 12 o'clock, close", W, [a("Vocal", 0, dist=1.0)])
ex("tabla at 4 o'clock, 2 metres away", W, [a("Tabla", -120, dist=2.0)])
# words + hedges
ex("the sax slightly left", J, [a("Sax", 15, 10)])
ex("keys hard right", B, [a("Keys", -90, 5)])
ex("put the bass a bit to the right", B, [a("Bass", -15, 10)])
ex("drums directly behind me", B, [a("Drums", 180, 5)])
ex("the flute far left and the shaker far right", W, [a("Flute", 90, 5), a("Shaker", -90, 5)])
ex("piano on the left, trumpet on the right", J, [a("Piano", 40, 20), a("Tpt", -40, 20)])
ex("on the left, the sitar; on the right, the tabla", W, [a("Sitar", 40, 20), a("Tabla", -40, 20)])
ex("vocals in the middle, guitars left and right", B, [a("Vox", 0, 3), a("Gtr L", 70, 25), a("Gtr R", -70, 25)])
ex("pad behind and to the left", E, [a("Pad", 135, 15)])
ex("the lead behind me, slightly to the right", E, [a("Lead", -165, 15)])
ex("perc rear left, pad rear right", E, [a("Perc", 135, 5), a("Pad", -135, 5)])
ex("keys front right", B, [a("Keys", -45, 5)])
ex("sax just left of centre", J, [a("Sax", 10, 8)])
ex("put the trumpet stage left", J, [a("Tpt", -40, 20)])
ex("the piano house left", J, [a("Piano", 40, 20)])
ex("tabla straight ahead, flute behind", W, [a("Tabla", 0, 3), a("Flute", 180, 5)])
# elevation
ex("pad overhead", E, [e("Pad", 90, 10)])
ex("lead 30 degrees up", E, [e("Lead", 30)])
ex("the flute slightly above, the sitar slightly below", W, [e("Flute", 15, 8), e("Sitar", -15, 8)])
ex("perc at elevation 45", E, [e("Perc", 45)])
ex("cellos below ear level, violins raised 20 degrees", O, [e("Cellos", -30, 15), e("Violins", 20)])
ex("brass directly above me", O, [e("Brass", 90, 10)])
# distances
ex("vocals half a meter away", B, [d("Vox", 0.5)])
ex("drums 5 metres back", B, [d("Drums", 5.0)])
ex("the sax 3 m away, 20 degrees left", J, [a("Sax", 20, dist=3.0)])
ex("put the tabla 10 feet away on the right", W, [a("Tabla", -40, 20, dist=3.048)])
ex("trumpet far away", J, [d("Tpt", 12.0)])
ex("vocal very close, whispering in my ear", W, [d("Vocal", 0.5)])
ex("the brass in the distance", O, [d("Brass", 12.0)])
ex("keys 1.5 m to my left", B, [a("Keys", 90, 5, dist=1.5)])
ex("piano two metres behind me", J, [a("Piano", 180, 5, dist=2.0)])
ex("bass 80 cm away, centred", B, [a("Bass", 0, 3, dist=0.8)])
# which track
ex("put the acoustic guitar on the left and the vocal on the right", S, [a("AcGtr", 40, 20), a("Vox", -40, 20)])
ex("strings 40 degrees left", O, [a("Violins", 40, 10), a("Violas", 40, 10), a("Cellos", 40, 10)])
ex("the kick dead center and the percussion 60 degrees right", E, [a("Kick", 0, 3), a("Perc", -60)])
ex("my synth lead at 15 degrees right, pad 90 degrees left", E, [a("Lead", -15), a("Pad", 90)])
ex("the guitar and the keys on the left", ["Vox", "Guitar", "Keys", "Bass"], [a("Guitar", 40, 20), a("Keys", 40, 20)])
ex("the trompet 25 degrees left", J, [a("Tpt", 25)])
ex("in a smoky jazz club, sax 20 degrees left and the piano on the right", J, [a("Sax", 20), a("Piano", -40, 20)], template="jazz_ensemble")
ex("a cathedral choir with the organ behind me, high up", ["Sopranos", "Altos", "Organ"], [a("Organ", 180, 5, el=30, el_tol=15)], template="choir")
ex("festival main stage; the singer 25 metres away in the centre", ["Vox", "Gtr", "Bass", "Drums"], [a("Vox", 0, 3, dist=25.0)], template="outdoor_festival")
ex("techno track, pad wide overhead and kick centre", E, [e("Pad", 90, 10), a("Kick", 0, 3)], template="electronic_dj")
# edits
ex("move the sax further left", J, [a("Sax", 35, 3)], setup="sax 20 degrees left")
ex("push the drums back 2 m", B, [d("Drums", 5.0)], setup="drums 3 metres away")
ex("swap guitar and keys", ["Vox", "Guitar", "Keys", "Bass"], [a("Guitar", -30), a("Keys", 30)], setup="guitar 30 degrees left, keys 30 degrees right")
ex("bring the vocals closer", B, [d("Vox", 1.34)], setup="vocals 2 m away")
ex("trumpet 10 degrees further right", J, [a("Tpt", -40)], setup="trumpet 30 degrees right")
ex("put the piano a bit further left", J, [a("Piano", 25, 3)], setup="piano 20 degrees left")  # "a bit" = 5 deg (docs/conductor.md)
ex("raise the flute", W, [e("Flute", 15, 3)], setup="flute 30 degrees left")
ex("move the tabla closer by 1 m", W, [d("Tabla", 2.0)], setup="tabla 3 m away")
ex("mirror the pad", E, [a("Pad", -70)], setup="pad 70 degrees left")
ex("now put the sax 30 degrees right", J, [a("Sax", -30)], setup="sax 20 degrees left")
# ---- abstract: 5 per template, varied wording
def ab(prompt, tracks, template): rows.append({"kind": "abstract", "prompt": prompt, "tracks": tracks, "expected_template": template})
ab("a huge cinematic score with sweeping strings and thundering brass", O, "classical_orchestra")
ab("make it sound like the Berlin Philharmonic playing Mahler", O, "classical_orchestra")
ab("full symphony orchestra, seats in the stalls", O, "classical_orchestra")
ab("epic movie trailer music", ["Strings", "Brass", "Timpani", "Choir"], "classical_orchestra")
ab("like sitting in a concert hall for a Beethoven symphony", O, "classical_orchestra")
ab("a smoky late-night jazz club", J, "jazz_ensemble")
ab("bebop quintet, like a Blue Note record from 1958", J, "jazz_ensemble")
ab("swinging combo with brushes on the snare and a walking bass", J, "jazz_ensemble")
ab("cocktail-hour lounge trio", ["Piano", "Upright", "Drums"], "jazz_ensemble")
ab("Coltrane-style saxophone quartet in a small bar", ["Sax", "Piano", "Bass", "Drums"], "jazz_ensemble")
ab("a loud garage rock band playing a sweaty gig", B, "rock_band")
ab("punk show with distorted guitars and pounding drums", B, "rock_band")
ab("classic rock, like seeing the band live from the front row", B, "rock_band")
ab("grunge four-piece, raw and loud", ["Vox", "Guitar", "Bass", "Drums"], "rock_band")
ab("indie band live at a small venue", B, "rock_band")
ab("an intimate string quartet playing Haydn", ["Violin 1", "Violin 2", "Viola", "Cello"], "chamber_music")
ab("baroque trio sonata in a small salon", ["Violin", "Cello", "Harpsichord"], "chamber_music")
ab("a piano quintet, close and detailed", ["Piano", "Vln 1", "Vln 2", "Vla", "Vc"], "chamber_music")
ab("Mozart chamber music for a few players", ["Violin", "Viola", "Cello"], "chamber_music")
ab("four string players sitting close together", ["Vln1", "Vln2", "Vla", "Vc"], "chamber_music")
ab("a pounding techno track for the club", E, "electronic_dj")
ab("deep house set at 3am", E, "electronic_dj")
ab("EDM festival drop with massive synths", E, "electronic_dj")
ab("trance with wide pads and an arpeggiated lead", E, "electronic_dj")
ab("drum and bass, rolling breakbeats and a sub bass", ["Drums", "Sub", "Pad", "Lead"], "electronic_dj")
ab("sacred choral music in a cathedral", ["Sopranos", "Altos", "Tenors", "Basses", "Organ"], "choir")
ab("a gospel choir lifting the roof", ["Choir", "Organ", "Piano"], "choir")
ab("Gregorian chant echoing in a stone abbey", ["Choir"], "choir")
ab("an a cappella SATB ensemble singing hymns", ["Sop", "Alto", "Tenor", "Bass"], "choir")
ab("requiem mass with choir and organ", ["Choir", "Organ"], "choir")
ab("a singer-songwriter alone with an acoustic guitar", S, "solo_performance")
ab("solo piano recital", ["Piano"], "solo_performance")
ab("just one voice and a guitar, unplugged", S, "solo_performance")
ab("a lone cellist playing Bach suites on a recital stage", ["Cello"], "solo_performance")
ab("an intimate ballad, single performer", ["Vox", "Piano"], "solo_performance")
ab("a raga with sitar and tabla", W, "world_music_ensemble")
ab("Middle Eastern ensemble with oud, ney and darbuka", ["Oud", "Ney", "Darbuka", "Vocal"], "world_music_ensemble")
ab("West African kora and djembe group", ["Kora", "Djembe", "Vocal", "Shaker"], "world_music_ensemble")
ab("traditional folk fusion with hand drums and bamboo flute", W, "world_music_ensemble")
ab("flamenco circle with guitar, cajon and palmas", ["Guitar", "Cajon", "Vocal", "Claps"], "world_music_ensemble")
ab("a polished radio-ready pop mix", B, "studio_recording")
ab("clean modern R&B production, vocal up front", ["Vox", "BVs", "Keys", "Bass", "Drums"], "studio_recording")
ab("a tight studio record with double-tracked guitars", B, "studio_recording")
ab("commercial pop single, mixed on studio monitors", B, "studio_recording")
ab("hip hop beat with the rapper front and centre", ["Vox", "Drums", "Bass", "Keys"], "studio_recording")
ab("a headliner on a summer festival main stage", B, "outdoor_festival")
ab("open-air stadium concert, huge crowd", B, "outdoor_festival")
ab("live band in the park with brass and keys", ["Vox", "Gtr", "Bass", "Drums", "Brass", "Keys"], "outdoor_festival")
ab("outdoor summer concert heard from far across the field", B, "outdoor_festival")
ab("big anthem at an open-air festival", B, "outdoor_festival")
for i, r in enumerate(rows):
    r["id"] = f"{r['kind'][0]}{i:03d}"
with open(__import__("pathlib").Path(__file__).with_name("conductor_eval.jsonl"), "w") as f:
    for r in rows:
        f.write(json.dumps(r) + "\n")
print(len(rows), sum(r["kind"] != "abstract" for r in rows))
