import numpy as np

from moodmusic.tonality import estimate_key, estimate_key_from_audio


def histogram(pitch_classes, weights=None):
    return np.bincount(np.asarray(pitch_classes) % 12, weights=weights, minlength=12)


def test_scales_are_recognised():
    c_major = histogram([0, 2, 4, 5, 7, 9, 11, 0, 4, 7, 0, 7])
    assert estimate_key(c_major).name == "C major"
    a_minor = histogram([9, 11, 0, 2, 4, 5, 8, 9, 0, 4, 9, 4])
    assert estimate_key(a_minor).name == "A minor"
    d_major = histogram(np.array([0, 2, 4, 5, 7, 9, 11, 0, 4, 7, 0, 7]) + 2)
    assert estimate_key(d_major).name == "D major"


def test_audio_chords_give_their_mode():
    sr = 22050
    t = np.arange(sr * 2) / sr

    def chord(midi_notes):
        return sum(np.sin(2 * np.pi * 440 * 2 ** ((m - 69) / 12) * t) for m in midi_notes).astype(np.float32) / 4

    major = np.concatenate([chord([60, 64, 67]), chord([65, 69, 72]), chord([67, 71, 74]), chord([60, 64, 67])])
    minor = np.concatenate([chord([57, 60, 64]), chord([62, 65, 69]), chord([64, 68, 71]), chord([57, 60, 64])])
    assert estimate_key_from_audio(major, sr).mode == "major"
    assert estimate_key_from_audio(minor, sr).mode == "minor"
