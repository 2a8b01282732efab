import numpy as np
import pytest
import soundfile

from moodmusic import audio
from moodmusic.mel import SAMPLE_RATE


@pytest.mark.parametrize("fmt,suffix", [("WAV", ".wav"), ("FLAC", ".flac"), ("OGG", ".ogg"), ("MP3", ".mp3")])
def test_formats_rates_and_channels_decode_to_mono_22050(tmp_path, make_tone, fmt, suffix):
    stereo = np.stack([make_tone(1.0, 440, sample_rate=44100), make_tone(1.0, 440, sample_rate=44100)], axis=1)
    path = tmp_path / f"clip{suffix}"
    soundfile.write(path, stereo, 44100, format=fmt)
    samples = audio.load_audio(path)
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert abs(samples.size - SAMPLE_RATE) < SAMPLE_RATE * 0.1  # mp3 adds codec padding
    assert 0.1 < np.sqrt(np.mean(samples**2)) < 0.3


def test_bytes_input_and_max_seconds(make_tone):
    data = audio.to_wav_bytes(make_tone(3.0))
    assert audio.load_audio(data).size == 3 * SAMPLE_RATE
    assert audio.load_audio(data, max_seconds=1.0).size == SAMPLE_RATE


def test_empty_garbage_and_missing_files_raise_clear_errors(tmp_path):
    empty = tmp_path / "empty.wav"
    soundfile.write(empty, np.zeros(0, dtype=np.float32), SAMPLE_RATE)
    with pytest.raises(audio.AudioDecodeError, match="no audio samples"):
        audio.load_audio(empty)
    garbage = tmp_path / "garbage.mp3"
    garbage.write_bytes(b"this is not audio" * 100)
    with pytest.raises(audio.AudioDecodeError, match="could not decode"):
        audio.load_audio(garbage)
    with pytest.raises(audio.AudioDecodeError, match="no such file"):
        audio.load_audio(tmp_path / "missing.wav")


def test_wav_out_is_16_bit_and_clipping_is_prevented_only_when_needed(tmp_path, make_tone):
    quiet = make_tone(0.5, amplitude=0.1)
    assert np.array_equal(audio.prevent_clipping(quiet), quiet)  # loudness kept
    loud = audio.prevent_clipping(make_tone(0.5, amplitude=2.0))
    assert np.max(np.abs(loud)) <= 0.99 + 1e-6
    path = tmp_path / "out.wav"
    audio.write_wav(path, quiet)
    info = soundfile.info(path)
    assert (info.subtype, info.samplerate, info.channels) == ("PCM_16", SAMPLE_RATE, 1)
