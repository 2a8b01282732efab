"""Perform a score excerpt with a mood's cues and render it with FluidSynth.

`arrange` turns an excerpt (quarter-note times) and a `Performance` into timed MIDI events in
seconds; `render_clips` writes several arranged clips into one MIDI file, separated by silent
gaps that let the reverb die out, renders that file with the FluidSynth command line in one go
(loading a 140 MB soundfont once per batch rather than once per clip) and cuts it back apart.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import mido
import numpy as np
import soundfile

from moodmusic.corpus.cues import CLOSED_HAT, CRASH, CUE_TRACKS, HIGHEST_PITCH, KICK, LOWEST_PITCH, RIDE, SNARE, Performance
from moodmusic.corpus.scores import Piece
from moodmusic.audio import prevent_clipping
from moodmusic.mel import FRAMES_PER_SECOND, SAMPLE_RATE, frames_for_seconds
from moodmusic.tonality import Key, estimate_key

SOUNDFONTS = {
    "fluidr3": "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "timgm6mb": "/usr/share/sounds/sf2/TimGM6mb.sf2",
    "musescore": "/usr/share/sounds/sf3/MuseScore_General.sf3",
}
GAP_SECONDS = 2.5  # silence between clips in one render: the reverb tail dies out in it
SYNTH_GAIN = 0.7  # the loudest clips peak near 0.8; the rare louder one is scaled down
TICKS_PER_SECOND = 960  # mido default 480 ticks per beat at 120 bpm
MELODY_CHANNEL, INNER_CHANNEL, PULSE_CHANNEL, DRUM_CHANNEL = 0, 1, 2, 9


class RenderError(RuntimeError):
    """Rendering cannot run or went wrong: a missing soundfont or fluidsynth program, a failed render; the message says which."""


def soundfont_path(name_or_path: str) -> Path:
    path = Path(SOUNDFONTS.get(name_or_path.lower(), name_or_path))
    if not path.is_file():
        raise RenderError(
            f"soundfont {name_or_path!r} not found at {path}; install it (scripts/setup.sh) or give a path. "
            f"Known names: {', '.join(SOUNDFONTS)}"
        )
    return path


def beat_quarters(piece: Piece, notes_per_beat: int) -> float:
    """The beat in quarter notes: the power of two nearest `notes_per_beat` typical note spacings.

    Scores write the same pace in different note values (Palestrina in halves, fiddle tunes in
    eighths); measuring the beat from the notes makes the tempo cue mean the same for all.
    """
    return float(2.0 ** np.clip(np.round(np.log2(notes_per_beat * piece.median_inter_onset())), -2, 2))


@dataclass
class ArrangedClip:
    """Timed events of one clip: (seconds, mido message), and the facts the manifest records."""

    events: list[tuple[float, mido.Message]] = field(default_factory=list)
    bpm: float = 0.0
    source_key: str = ""
    performed_key: str = ""
    cue_notes: list[tuple[int, float, float]] = field(default_factory=list)  # (row of CUE_TRACKS, start, end) of each graded-cue note


def cue_tracks(clip: ArrangedClip, seconds: float) -> np.ndarray:
    """(2, frames) uint8 on the log-mel's frames (`moodmusic.mel.frames_for_seconds`): 1 where a note of the cue
    sounds (from its onset to its written end; the release and reverb that follow are not counted).

    The corpus builder knows every note it adds for a graded valence cue; these tracks hand that knowledge
    to the classifier as a training target (`moodmusic train classifier --cue-weight`), so it learns to find
    the doubled thirds and the added semitones, and can count them, instead of inferring their share from
    the clip's valence alone."""
    tracks = np.zeros((len(CUE_TRACKS), frames_for_seconds(seconds)), dtype=np.uint8)
    for row, start, end in clip.cue_notes:
        first, last = int(round(start * FRAMES_PER_SECOND)), int(round(min(end, seconds) * FRAMES_PER_SECOND))
        tracks[row, first : max(last, first + 1)] = 1
    return tracks


def note_rolls(clip: ArrangedClip, seconds: float) -> np.ndarray:
    """(16 channels, 128 MIDI pitches, frames) bool on the log-mel's frames: where each note of the clip sounds, per
    channel (so per instrument), as written (release and reverb not counted); the drum channel stays empty.

    What a transcription of the clip would find; the cue tracks are the part of it a graded cue added."""
    rolls = np.zeros((16, 128, frames_for_seconds(seconds)), dtype=bool)
    started: dict[tuple[int, int], float] = {}
    for time, message in sorted(clip.events, key=lambda event: event[0]):
        if message.type not in ("note_on", "note_off") or message.channel == DRUM_CHANNEL:
            continue
        key = (message.channel, message.note)
        if message.type == "note_on" and message.velocity > 0:
            started[key] = time
        elif key in started:
            start = started.pop(key)
            first, last = int(round(start * FRAMES_PER_SECOND)), int(round(min(time, seconds) * FRAMES_PER_SECOND))
            rolls[message.channel, message.note, first : max(last, first + 1)] = True
    return rolls


def change_mode(pitches: np.ndarray, key: Key, mode: str) -> np.ndarray:
    """Move the third and sixth (and the seventh, major-ward) to the parallel mode of `key`."""
    if key.mode == mode:
        return pitches
    degree = (pitches - key.tonic) % 12
    pitches = pitches.copy()
    if mode == "minor":
        pitches[np.isin(degree, (4, 9))] -= 1  # harmonic minor: the leading tone stays
    else:
        pitches[np.isin(degree, (3, 8, 10))] += 1
    return pitches


def fit_register(pitches: np.ndarray, transpose: int) -> np.ndarray:
    """Transpose, then move by octaves so the music sits in a register every GM program plays."""
    pitches = pitches + transpose
    median = float(np.median(pitches))
    pitches = pitches + 12 * int(np.round((np.clip(median, 52, 80) - median) / 12))
    return np.clip(pitches, LOWEST_PITCH, HIGHEST_PITCH)


def keep_on_beat_notes(excerpt: Piece, beat: float) -> Piece:
    """Only the notes that start on a beat, each held at least until the next beat of its part."""
    on_beat = np.abs(excerpt.onsets / beat - np.round(excerpt.onsets / beat)) < 1e-3
    durations = np.maximum(excerpt.durations, beat)
    durations = np.minimum(durations, excerpt.length - excerpt.onsets)
    return replace(excerpt, onsets=excerpt.onsets[on_beat], durations=durations[on_beat], pitches=excerpt.pitches[on_beat], parts=excerpt.parts[on_beat])


SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 11)}  # minor: harmonic, as change_mode writes it


def third_above(pitch: int, tonic: int, mode: str) -> int | None:
    """The scale tone two steps above `pitch` in the key (a diatonic third), or None off the scale."""
    scale = SCALES[mode]
    degree = (pitch - tonic) % 12
    if degree not in scale:
        return None
    upper = scale[(scale.index(degree) + 2) % 7]
    return pitch + ((upper - degree) % 12)


class EvenShare:
    """Picks a share of a sequence of events spread evenly (error diffusion from a random phase), so
    every stretch of a clip carries about the clip's share, where coin flips would leave short windows
    with whatever the draws gave."""

    def __init__(self, share: float, rng: np.random.Generator):
        self.share = share
        self.level = float(rng.random()) if share > 0 else 0.0

    def __call__(self) -> bool:
        self.level += self.share
        if self.level >= 1.0:
            self.level -= 1.0
            return True
        return False


def _pitch_class_weights(pitches: np.ndarray, durations: np.ndarray) -> np.ndarray:
    return np.bincount(pitches % 12, weights=durations, minlength=12)


def _notes(events: list, channel: int, start: float, end: float, pitch: int, velocity: int) -> None:
    events.append((start, mido.Message("note_on", channel=channel, note=int(pitch), velocity=int(np.clip(velocity, 1, 127)))))
    events.append((end, mido.Message("note_off", channel=channel, note=int(pitch), velocity=0)))


def arrange(excerpt: Piece, beat: float, performance: Performance, seconds: float, rng: np.random.Generator, cues: str = "v3") -> ArrangedClip:
    """Timed MIDI events of one excerpt performed with `performance`, from 0 to `seconds`.

    `beat` is the tactus in quarter notes: accents, pulses and drums fall on it. `cues` is the cue
    table's version (corpus/cues.py): v2 took the consonant doubling's thirds in the source key.
    """
    qps = excerpt.length / seconds
    clip = ArrangedClip(bpm=60.0 * qps / beat)
    if performance.on_beat_only:
        excerpt = keep_on_beat_notes(excerpt, beat)
    key = estimate_key(_pitch_class_weights(excerpt.pitches, excerpt.durations))
    pitches = fit_register(change_mode(excerpt.pitches, key, performance.mode), performance.transpose)
    clip.source_key = key.name
    clip.performed_key = estimate_key(_pitch_class_weights(pitches, excerpt.durations)).name

    events: list[tuple[float, mido.Message]] = []
    for channel, program in (
        (MELODY_CHANNEL, performance.melody_program),
        (INNER_CHANNEL, performance.accompaniment_program),
        (PULSE_CHANNEL, performance.pulse_program),
        (DRUM_CHANNEL, 0),  # the standard kit: every GM soundfont has it
    ):
        events.append((0.0, mido.Message("control_change", channel=channel, control=121, value=0)))
        events.append((0.0, mido.Message("program_change", channel=channel, program=program)))
        events.append((0.0, mido.Message("control_change", channel=channel, control=7, value=100)))
        events.append((0.0, mido.Message("control_change", channel=channel, control=11, value=performance.expression)))
        events.append((0.0, mido.Message("control_change", channel=channel, control=91, value=performance.reverb)))

    def velocity_at(onset_quarters: float, offset: int) -> int:
        in_beats = onset_quarters / beat
        accent = 10 if performance.beat_accent and abs(in_beats - round(in_beats)) < 1e-3 else 0
        return int(performance.velocity + offset + accent + rng.normal(0, performance.velocity_spread))

    doubled, dissonant = EvenShare(performance.consonant_doubling, rng), EvenShare(performance.dissonance, rng)
    # The thirds are diatonic in the key the clip is played in. Cues v2 took them in the source key before
    # the transposition, so unless `transpose` was 0 (mod 12) most melody notes counted as off the scale and
    # stayed single, and the rest were doubled by a third foreign to the key; v2 builds keep that, to rebuild exactly.
    doubling_tonic = key.tonic if cues == "v2" else (key.tonic + performance.transpose) % 12
    # The score itself: the top voice on the melody instrument, the other voices beneath it.
    for onset, duration, pitch, part in zip(excerpt.onsets, excerpt.durations, pitches, excerpt.parts):
        start = onset / qps
        end = min(start + max(duration / qps * performance.articulation, 0.06), seconds)
        channel, offset = (MELODY_CHANNEL, 4) if part == 0 else (INNER_CHANNEL, -6)
        _notes(events, channel, start, end, pitch, velocity_at(onset, offset))
        # Consonant doubling (cues v2): the melody in parallel thirds above it, on its own instrument.
        if part == 0 and doubled():
            upper = third_above(int(pitch), doubling_tonic, performance.mode)
            if upper is not None and upper <= HIGHEST_PITCH:
                _notes(events, MELODY_CHANNEL, start, end, upper, velocity_at(onset, 0))
                clip.cue_notes.append((0, start, end))

    # The pulse layer: the harmony sounding at each pulse, an octave down, repeated at the cue's density.
    # Dissonance (cues v2) adds a semitone above its lowest note on some beats, also where no pulse plays.
    per_beat = performance.accompaniment_per_beat
    if per_beat > 0 or performance.dissonance > 0:
        step = beat / per_beat if per_beat > 0 else beat
        for time in np.arange(0.0, excerpt.length, step):
            sounding = (excerpt.onsets <= time + 1e-6) & (excerpt.onsets + excerpt.durations > time + 1e-6)
            chord = [max(p, LOWEST_PITCH) for p in sorted({int(p) - 12 if p >= 60 else int(p) for p in pitches[sounding]})[:3]]
            start = time / qps
            end = min(start + step / qps * max(performance.articulation, 0.5), seconds)
            for pitch in chord if per_beat > 0 else ():
                _notes(events, PULSE_CHANNEL, start, end, pitch, velocity_at(time, -4))
            if chord and dissonant():
                _notes(events, PULSE_CHANNEL, start, end, chord[0] + 1, velocity_at(time, -4))
                clip.cue_notes.append((1, start, end))

    # Drums: density rises with arousal (cue table, "rhythmic density").
    if performance.drums:
        hats_per_beat = {1: 1, 2: 2, 3: 4}[performance.drums]
        for time in np.arange(0.0, excerpt.length, beat / hats_per_beat):
            start = time / qps
            in_bar = round(time / beat * hats_per_beat) / hats_per_beat % 4  # position in a 4-beat bar
            _notes(events, DRUM_CHANNEL, start, start + 0.05, CLOSED_HAT if performance.drums < 3 or in_bar % 1 else RIDE, velocity_at(time, -18))
            if in_bar in (0.0, 2.0) or (performance.drums == 3 and in_bar == 2.5):
                _notes(events, DRUM_CHANNEL, start, start + 0.1, KICK, velocity_at(time, -4))
            if performance.drums >= 2 and in_bar in (1.0, 3.0):
                _notes(events, DRUM_CHANNEL, start, start + 0.1, SNARE, velocity_at(time, -6))
        if performance.drums == 3:
            _notes(events, DRUM_CHANNEL, 0.0, 0.5, CRASH, performance.velocity)

    # Notes that would ring past the clip end are cut there; sort offs before ons at equal times.
    events = [(min(t, seconds), m) for t, m in events if t < seconds or m.type == "note_off"]
    events.sort(key=lambda item: (item[0], item[1].type == "note_on"))
    clip.events = events
    return clip


def write_midi(clips: list[ArrangedClip], seconds: float, path: Path) -> None:
    """All clips in one file, clip k starting at k * (seconds + GAP_SECONDS)."""
    track = mido.MidiTrack()
    timeline: list[tuple[float, mido.Message]] = []
    for index, clip in enumerate(clips):
        origin = index * (seconds + GAP_SECONDS)
        timeline += [(origin + t, m) for t, m in clip.events]
        for channel in (MELODY_CHANNEL, INNER_CHANNEL, PULSE_CHANNEL, DRUM_CHANNEL):
            timeline.append((origin + seconds, mido.Message("control_change", channel=channel, control=123, value=0)))
    timeline.append((len(clips) * (seconds + GAP_SECONDS), mido.Message("control_change", channel=0, control=123, value=0)))
    timeline.sort(key=lambda item: item[0])
    track.append(mido.MetaMessage("set_tempo", tempo=500_000, time=0))
    previous = 0
    for time, message in timeline:
        tick = int(round(time * TICKS_PER_SECOND))
        track.append(message.copy(time=tick - previous))
        previous = tick
    midi = mido.MidiFile(ticks_per_beat=480)
    midi.tracks.append(track)
    midi.save(str(path))


def render_clips(clips: list[ArrangedClip], seconds: float, soundfont: Path) -> list[np.ndarray]:
    """Render clips with FluidSynth to mono float32 at 22,050 Hz, one array per clip."""
    if shutil.which("fluidsynth") is None:
        raise RenderError("the fluidsynth program is not installed: run scripts/setup.sh (apt package fluidsynth)")
    with tempfile.TemporaryDirectory(prefix="moodmusic-render-") as tmp:
        midi_path, wav_path = Path(tmp) / "clips.mid", Path(tmp) / "clips.wav"
        write_midi(clips, seconds, midi_path)
        command = [
            "fluidsynth", "-n", "-i", "-q", "-R", "1", "-C", "0", "-g", str(SYNTH_GAIN),
            "-r", str(SAMPLE_RATE), "-O", "float", "-T", "wav", "-F", str(wav_path), str(soundfont), str(midi_path),
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        if result.returncode != 0 or not wav_path.exists():
            raise RenderError(f"fluidsynth failed ({result.returncode}): {result.stderr.strip()[:500]}")
        stereo, rate = soundfile.read(str(wav_path), dtype="float32", always_2d=True)
    if rate != SAMPLE_RATE:
        raise RenderError(f"fluidsynth rendered at {rate} Hz instead of {SAMPLE_RATE}")
    mono = stereo.mean(axis=1)
    clip_samples = int(round(seconds * SAMPLE_RATE))
    stride = (seconds + GAP_SECONDS) * SAMPLE_RATE
    out = []
    for index in range(len(clips)):
        start = int(round(index * stride))
        audio = mono[start : start + clip_samples]
        audio = np.pad(audio, (0, clip_samples - audio.size))
        out.append(prevent_clipping(audio).astype(np.float32))
    return out
