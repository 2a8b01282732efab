"""The one table that turns a mood (valence, arousal) into a performance of a score.

The cues and their directions follow the music-emotion literature: Juslin & Laukka (2004),
Gabrielsson & Lindström (2010), and the CMERS rule system of Livingstone et al. (2010), which
changes mode, tempo, loudness, articulation, register and timbre of an existing score to move
its perceived emotion. `v` is valence and `a` arousal, both in [-1, 1]; `u(x, y)` is a uniform
random jitter that keeps each cue from being a deterministic function of the label (so no single
cue identifies the mood, and a model must combine them as listeners do).

| cue | rule | literature direction |
|---|---|---|
| mode | major if v >= 0, else the parallel (harmonic) minor | major = positive valence (strongest valence cue) |
| tempo | 85 * 2^(0.9 a + 0.1 v) * u(0.92, 1.08) beats per minute (42 to 172); the beat is the score's typical note value when calm (a < -0.2), twice it when active (a > 0.2), either in between | fast = high arousal; slightly faster when happy |
| loudness | MIDI velocity 72 + 36 a + 6 v + u(-6, 6); expression CC11 96 + 28 a | loud = high arousal (and anger) |
| articulation | sounding fraction of each note 0.9 - 0.3 max(a, 0) - 0.15 max(v, 0) max(a, 0) + u(-0.05, 0.05) | staccato = high arousal / happy; legato = calm / sad |
| register | transpose 4 v + 3 a + u(-2, 2) semitones, kept in the playable range | high pitch = happy / active; low = sad |
| instrumentation | melody, inner-voice and pulse programs drawn from a bright or a soft General MIDI pool, P(bright) = (1 + a) / 2 (pulse pools hold struck or plucked instruments only) | bright, sharp timbres = high arousal / anger; soft = tender / sad |
| rhythmic density | accompaniment pulses: one per beat (so 0.7/s at the slowest), two per beat when a > 0.55 (up to 5.7/s); drums when a > -0.2 (P rises with a), busier hats and kicks as a rises | dense rhythm = high arousal |
| rhythmic simplicity | with P = clip((-a - 0.1) / 0.5, 0, 1) only notes that start on a beat are played, each held until the next | sparse, smooth rhythm = calm / sad; busy = active |
| reverb | CC91 send 60 - 30 a - 10 v + u(-10, 10) | more reverberant = calm / sad, dry = active |
| velocity spread | per-note velocity jitter 4 + 10 max(a, 0) and accent on beats when a > 0.3 | sharp contrasts = high arousal / anger |
| consonant doubling (cues v2) | share clip(v + u(-0.1, 0.1), 0, 1) of melody notes doubled a diatonic third above on the melody instrument, when v >= 0 | consonance, sweet parallel thirds = positive valence (happiness, tenderness) |
| dissonance (cues v2) | share clip(-v + u(-0.1, 0.1), 0, 1) of the pulse layer's beats that add a semitone above the harmony's lowest note (also where no pulse plays), when v < 0; both shares spread evenly over the clip | dissonance = negative valence (anger, sadness, fear) |

The first ten rows are cues v1. Under v1 the mode carries the sign of valence and nothing audible its
size (the other valence terms are smaller than their jitter); v2's last two rows grow with |v|. `--cues v1`
rebuilds a v1 corpus exactly: v2 draws its extra random numbers only where it uses them.

Cues v3 is v2 with the doubling's thirds taken in the key the clip is played in. v2 took them in the
score's own key before the transposition (the register row), so unless the transposition was 0 (mod 12)
most melody notes counted as off the scale and stayed single, and the others got a third foreign to the
key: over 600 positive clips only 60% of the planned share was doubled (v3: 94%), and the share of melody
notes actually doubled ranked valence at Spearman 0.67 (v3: 0.86). Found through the cue tracks
(`corpus.render.cue_tracks`); v2 builds reproduce the bug, so the models trained on them rebuild exactly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

# General MIDI programs (0-based). Both pools share piano and strings so that no single
# instrument identifies a quadrant; the pools differ in brightness and attack.
SOFT_MELODY = (0, 4, 11, 19, 24, 42, 46, 48, 49, 52, 68, 70, 71, 73, 89)
BRIGHT_MELODY = (0, 1, 6, 7, 13, 16, 29, 30, 40, 48, 56, 61, 62, 80, 81)
SOFT_ACCOMPANIMENT = (0, 4, 24, 46, 48, 49, 52, 88, 89, 19)
BRIGHT_ACCOMPANIMENT = (0, 1, 6, 16, 25, 27, 29, 33, 48, 61, 62)
# The pulse layer marks the beat, so it takes instruments with a clear attack (struck or plucked).
SOFT_PULSE = (0, 4, 8, 11, 24, 46)
BRIGHT_PULSE = (0, 1, 6, 12, 25, 27, 29, 33)
# Percussion keys on MIDI channel 10 (General MIDI drum map).
KICK, SNARE, CLOSED_HAT, RIDE, CRASH = 36, 38, 42, 51, 49

LOWEST_PITCH, HIGHEST_PITCH = 28, 100
CUE_VERSIONS = ("v1", "v2", "v3")
CUE_TRACKS = ("consonant_doubling", "dissonance")  # the graded valence cues, one row each of a clip's cue tracks (corpus.render.cue_tracks)


@dataclass
class Performance:
    """How one excerpt is played. Every field is recorded in the corpus manifest."""

    mode: str  # "major" or "minor"
    tempo_bpm: float  # beats per minute
    notes_per_beat: int  # 1: the score's typical note value is the beat; 2: it subdivides the beat
    on_beat_only: bool  # play only the notes that start on a beat (a sparser, smoother rhythm)
    velocity: int  # mean MIDI velocity
    expression: int  # CC11
    velocity_spread: float
    beat_accent: bool
    articulation: float  # fraction of each note's written length that sounds
    transpose: int  # semitones
    bright_timbre: bool
    melody_program: int
    accompaniment_program: int
    pulse_program: int
    accompaniment_per_beat: float  # 0 = no accompaniment; 0.25 = one per bar of 4
    drums: int  # 0 none, 1 light (kick + hats on beats), 2 backbeat with eighth hats, 3 sixteenth hats
    reverb: int  # CC91 send, 0..127
    consonant_doubling: float = 0.0  # share of melody notes doubled a diatonic third above (v2, v >= 0)
    dissonance: float = 0.0  # share of pulse beats with an added semitone above the bass (v2, v < 0)

    def as_dict(self) -> dict:
        return asdict(self)


def _clip(value: float, low: float, high: float) -> float:
    return float(min(max(value, low), high))


def perform(valence: float, arousal: float, rng: np.random.Generator, cues: str = "v2") -> Performance:
    """Draw a performance for a mood (the table in this module's docstring, rule by rule)."""
    if cues not in CUE_VERSIONS:
        raise ValueError(f"unknown cue version {cues!r}; choose one of {', '.join(CUE_VERSIONS)}")
    v, a = float(valence), float(arousal)
    u = rng.uniform

    tempo_bpm = 85 * 2.0 ** (0.9 * a + 0.1 * v) * u(0.92, 1.08)
    velocity = int(round(_clip(72 + 36 * a + 6 * v + u(-6, 6), 24, 124)))
    expression = int(round(_clip(96 + 28 * a, 60, 127)))
    articulation = _clip(0.9 - 0.3 * max(a, 0) - 0.15 * max(v, 0) * max(a, 0) + u(-0.05, 0.05), 0.3, 1.0)
    transpose = int(round(4 * v + 3 * a + u(-2, 2)))

    bright = bool(rng.random() < (1 + a) / 2)
    melody_pool = BRIGHT_MELODY if bright else SOFT_MELODY
    accompaniment_pool = BRIGHT_ACCOMPANIMENT if bright else SOFT_ACCOMPANIMENT

    per_beat = 1.0 if a < 0.55 else 2.0
    if a > -0.2 and rng.random() < 0.15:  # some lively excerpts keep the bare score, as a fiddle solo would
        per_beat = 0.0

    drums = 0
    if a > -0.2 and rng.random() < _clip((a + 0.2) / 0.8, 0.0, 0.95):
        drums = 1 if a < 0.3 else (2 if a < 0.7 else 3)

    consonant_doubling = dissonance = 0.0
    if cues != "v1":  # only v2 and v3 draw this jitter, so a v1 build keeps its random stream
        graded = _clip(abs(v) + u(-0.1, 0.1), 0.0, 1.0)
        consonant_doubling, dissonance = (graded, 0.0) if v >= 0 else (0.0, graded)

    return Performance(
        mode="major" if v >= 0 else "minor",
        tempo_bpm=float(tempo_bpm),
        notes_per_beat=1 if a < -0.2 else 2 if a > 0.2 else int(rng.integers(1, 3)),
        on_beat_only=bool(rng.random() < _clip((-a - 0.1) / 0.5, 0.0, 1.0)),
        velocity=velocity,
        expression=expression,
        velocity_spread=4 + 10 * max(a, 0),
        beat_accent=a > 0.3,
        articulation=articulation,
        transpose=transpose,
        bright_timbre=bright,
        melody_program=int(rng.choice(melody_pool)),
        accompaniment_program=int(rng.choice(accompaniment_pool)),
        pulse_program=int(rng.choice(BRIGHT_PULSE if bright else SOFT_PULSE)),
        accompaniment_per_beat=per_beat,
        drums=drums,
        reverb=int(round(_clip(60 - 30 * a - 10 * v + u(-10, 10), 0, 127))),
        consonant_doubling=consonant_doubling,
        dissonance=dissonance,
    )
