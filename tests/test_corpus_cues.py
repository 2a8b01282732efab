"""The cue table moves each cue in the direction the literature gives, and scores are read right."""

from dataclasses import replace

import numpy as np
import pytest

from moodmusic.corpus.cues import perform
from moodmusic.corpus.render import MELODY_CHANNEL, PULSE_CHANNEL, SCALES, EvenShare, arrange, beat_quarters, change_mode, cue_tracks, fit_register, note_rolls, third_above
from moodmusic.corpus.scores import Piece, excerpt
from moodmusic.tonality import Key


def mean_cue(name, valence, arousal, draws=200):
    values = [getattr(perform(valence, arousal, np.random.default_rng(i)), name) for i in range(draws)]
    return float(np.mean(values))


@pytest.mark.parametrize("cue", ["tempo_bpm", "velocity", "expression", "accompaniment_per_beat", "drums", "bright_timbre"])
def test_arousal_raises_activity_cues(cue):
    assert mean_cue(cue, 0.0, 0.8) > mean_cue(cue, 0.0, -0.8)


def test_arousal_shortens_articulation_and_dries_the_reverb():
    assert mean_cue("articulation", 0.0, 0.8) < mean_cue("articulation", 0.0, -0.8)
    assert mean_cue("reverb", 0.0, 0.8) < mean_cue("reverb", 0.0, -0.8)
    assert mean_cue("on_beat_only", 0.0, -0.9) > 0.9 and mean_cue("on_beat_only", 0.0, 0.5) == 0


def test_valence_sets_the_mode_and_raises_the_register():
    rng = np.random.default_rng(0)
    assert perform(0.3, 0.0, rng).mode == "major" and perform(-0.3, 0.0, rng).mode == "minor"
    assert mean_cue("transpose", 0.8, 0.0) > mean_cue("transpose", -0.8, 0.0)


def test_v2_cues_grow_with_the_size_of_valence_on_their_own_side():
    assert mean_cue("consonant_doubling", 0.9, 0.0) > mean_cue("consonant_doubling", 0.4, 0.0) + 0.3
    assert mean_cue("dissonance", -0.9, 0.0) > mean_cue("dissonance", -0.4, 0.0) + 0.3
    assert mean_cue("dissonance", 0.9, 0.0) == 0 and mean_cue("consonant_doubling", -0.9, 0.0) == 0
    v1 = perform(-0.9, 0.5, np.random.default_rng(0), cues="v1")
    assert v1.dissonance == 0 and v1.consonant_doubling == 0
    with pytest.raises(ValueError, match="cue version"):
        perform(0.0, 0.0, np.random.default_rng(0), cues="v4")


def test_third_above_stays_in_the_key():
    assert [third_above(p, 0, "major") for p in (60, 64, 67, 71)] == [64, 67, 71, 74]  # C->E, E->G, G->B, B->D
    assert third_above(60, 0, "minor") == 63 and third_above(68, 0, "minor") == 72  # C->Eb, Ab->C
    assert third_above(61, 0, "major") is None  # C# is off the C major scale


@pytest.mark.parametrize("share", [0.0, 0.25, 0.6, 1.0])
def test_even_share_spreads_its_picks(share):
    pick = EvenShare(share, np.random.default_rng(0))
    picks = np.array([pick() for _ in range(400)])
    assert abs(picks.mean() - share) < 0.01
    windows = picks.reshape(40, 10).mean(axis=1)  # every stretch of 10 events holds the share, to one event
    assert np.all(np.abs(windows - share) <= 0.1 + 1e-9)


def test_v2_arrangement_doubles_happy_melodies_and_roughens_negative_harmony():
    piece = toy_piece(16.0)

    def notes_on(valence, channel):
        performance = perform(valence, -0.5, np.random.default_rng(2))
        beat = beat_quarters(piece, performance.notes_per_beat)
        clip = arrange(excerpt(piece, 0.0, 4.0 * performance.tempo_bpm / 60 * beat), beat, performance, 4.0, np.random.default_rng(3))
        return [m.note for _, m in clip.events if m.type == "note_on" and m.channel == channel]

    # The toy piece is one voice: the doubling puts a second melody note on most of its notes.
    assert len(notes_on(0.95, MELODY_CHANNEL)) > 1.5 * len(notes_on(-0.95, MELODY_CHANNEL))
    # The pulse layer repeats the melody note an octave down; dissonance adds the semitone above it.
    pulse_negative, pulse_positive = notes_on(-0.95, PULSE_CHANNEL), notes_on(0.95, PULSE_CHANNEL)
    assert len(pulse_negative) > len(pulse_positive)


def doubling_of(cues, transpose, share=1.0):
    """A one-voice C major tune played transposed, every note asked to be doubled: the clip, its doubled
    (upper) notes and the number of melody notes."""
    pitches = np.array([60, 64, 67, 72, 67, 64, 60, 62, 65, 69, 71, 67, 60, 64, 62, 60] * 2)
    onsets = np.arange(pitches.size) * 0.5
    piece = Piece("c-major", "test", onsets, np.full(pitches.size, 0.5), pitches, np.zeros(pitches.size, int), 16.0)
    performance = perform(0.9, -0.5, np.random.default_rng(2), cues)
    performance = replace(performance, transpose=transpose, consonant_doubling=share, on_beat_only=False)
    beat = beat_quarters(piece, performance.notes_per_beat)
    clip = arrange(excerpt(piece, 0.0, 4.0 * performance.tempo_bpm / 60 * beat), beat, performance, 4.0, np.random.default_rng(3), cues)
    starts = {}
    for time, message in clip.events:
        if message.type == "note_on" and message.channel == MELODY_CHANNEL:
            starts.setdefault(time, []).append(message.note)
    return clip, [max(notes) for notes in starts.values() if len(notes) == 2], len(starts)


@pytest.mark.parametrize("transpose", [0, 3, -5])
def test_v3_doubles_every_melody_note_by_a_third_of_the_key_it_is_played_in(transpose):
    clip, upper, melody_notes = doubling_of("v3", transpose)
    tonic = (0 + transpose) % 12  # the toy piece is in C major
    assert len(upper) == melody_notes > 0  # every note of the scale has its third
    assert all((pitch - tonic) % 12 in SCALES["major"] for pitch in upper)
    assert len(clip.cue_notes) == melody_notes


def test_v2_took_its_thirds_in_the_source_key_and_is_rebuilt_so():
    """The v2 bug, kept so v2 corpora rebuild exactly: transposed by 3 semitones, the C major thirds fall on
    notes of E-flat major only where the two scales share them, and those thirds are foreign to E-flat."""
    _, upper, melody_notes = doubling_of("v2", 3)
    assert 0 < len(upper) < melody_notes
    assert any((pitch - 3) % 12 not in SCALES["major"] for pitch in upper)
    assert doubling_of("v2", 0)[1] == doubling_of("v3", 0)[1]  # untransposed, the versions agree


def test_cue_tracks_mark_where_the_cue_notes_sound():
    clip, _, _ = doubling_of("v3", 0, share=0.5)
    tracks = cue_tracks(clip, 4.0)
    assert tracks.shape == (2, 1 + int(4.0 * 22050) // 256) and tracks.dtype == np.uint8
    assert tracks[1].sum() == 0  # no dissonance on the positive side
    assert 0.2 < tracks[0].mean() < 0.8  # half the notes doubled
    for _, start, end in clip.cue_notes:
        assert tracks[0, int(round(start * 22050 / 256))] == 1
    piece = toy_piece(16.0)
    performance = replace(perform(-0.9, 0.5, np.random.default_rng(2), "v3"), dissonance=1.0, accompaniment_per_beat=1.0)
    beat = beat_quarters(piece, performance.notes_per_beat)
    negative = arrange(excerpt(piece, 0.0, 4.0 * performance.tempo_bpm / 60 * beat), beat, performance, 4.0, np.random.default_rng(3))
    tracks = cue_tracks(negative, 4.0)
    assert tracks[0].sum() == 0 and tracks[1].mean() > 0.5


def test_note_rolls_hold_every_written_note_per_channel_and_contain_the_cue_notes():
    clip, upper, _ = doubling_of("v3", 0, share=0.5)
    rolls = note_rolls(clip, 4.0)
    assert rolls.shape == (16, 128, 1 + int(4.0 * 22050) // 256) and rolls.dtype == bool
    assert not rolls[9].any()  # drums are not notes
    assert rolls[MELODY_CHANNEL].any() and set(np.flatnonzero(rolls[MELODY_CHANNEL].any(axis=1))) >= set(upper)
    doubled = cue_tracks(clip, 4.0)[0].astype(bool)
    assert (rolls[MELODY_CHANNEL].sum(axis=0)[doubled] >= 2).mean() > 0.9  # a doubled note sounds beside its melody note
    started = [(time, message) for time, message in clip.events if message.type == "note_on" and message.velocity > 0 and message.channel != 9]
    for time, message in started:
        assert rolls[message.channel, message.note, min(int(round(time * 22050 / 256)), rolls.shape[2] - 1)]


def test_change_mode_moves_third_and_sixth():
    c_major_scale = np.array([60, 62, 64, 65, 67, 69, 71, 72])
    minor = change_mode(c_major_scale, Key(0, "major", 1.0), "minor")
    assert minor.tolist() == [60, 62, 63, 65, 67, 68, 71, 72]  # harmonic minor
    back = change_mode(np.array([57, 59, 60, 62, 64, 65, 67]), Key(9, "minor", 1.0), "major")
    assert back.tolist() == [57, 59, 61, 62, 64, 66, 68]  # A major
    assert change_mode(c_major_scale, Key(0, "major", 1.0), "major") is c_major_scale


def test_register_is_kept_playable():
    pitches = fit_register(np.array([20, 24, 28]), transpose=-5)
    assert pitches.min() >= 28 and 40 <= np.median(pitches) <= 92


def toy_piece(length=8.0):
    onsets = np.arange(0, length, 0.5)
    return Piece("toy", "test", onsets, np.full(onsets.size, 0.5), 60 + (np.arange(onsets.size) % 8), np.zeros(onsets.size, int), length)


def test_excerpt_loops_short_pieces_and_clips_notes_to_the_window():
    piece = toy_piece(4.0)
    part = excerpt(piece, 3.0, 6.0)
    assert part.length == 6.0 and part.onsets.min() >= 0 and (part.onsets + part.durations).max() <= 6.0 + 1e-9
    assert part.onsets.size == 12  # 6 quarter notes of eighths, looped over the 4-beat piece


def test_arranged_clip_stays_inside_its_seconds_and_uses_the_cues():
    piece = toy_piece(16.0)
    rng = np.random.default_rng(1)
    performance = perform(0.8, 0.9, rng)
    beat = beat_quarters(piece, performance.notes_per_beat)
    window = 4.0 * performance.tempo_bpm / 60 * beat
    clip = arrange(excerpt(piece, 0.0, window), beat, performance, 4.0, rng)
    times = [t for t, _ in clip.events]
    assert min(times) >= 0 and max(times) <= 4.0
    notes = [m for _, m in clip.events if m.type == "note_on"]
    assert any(m.channel == 9 for m in notes) == bool(performance.drums)
    assert abs(clip.bpm - performance.tempo_bpm) < 1e-6
