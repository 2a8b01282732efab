import numpy as np
import pytest
import soundfile

from moodmusic import audio
from moodmusic.loops import seam_metrics
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


def seamless_noise(seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    """Low-passed noise that is periodic over its own length (built in the frequency domain), so its end
    joins its start like a loop's, and so that a shift of even a few samples shows (a tone would hide it)."""
    size = round(seconds * SAMPLE_RATE)
    rng = np.random.default_rng(seed)
    bins = np.fft.rfftfreq(size, 1 / SAMPLE_RATE)
    spectrum = rng.standard_normal(bins.size) * np.exp(1j * rng.uniform(0, 2 * np.pi, bins.size)) / (1 + bins / 300.0)
    samples = np.fft.irfft(spectrum, n=size)
    return (0.3 * samples / np.max(np.abs(samples))).astype(np.float32)


@pytest.mark.parametrize("name", ["wav", "flac", "ogg", "mp3"])
def test_clips_out_in_every_format_decode_to_the_same_samples_in_time(tmp_path, name):
    clip = seamless_noise()
    path = tmp_path / f"loop.{name}"
    audio.write_audio(path, clip)  # the format from the suffix
    assert soundfile.info(path).format == audio.OUTPUT_FORMATS[name].container
    back = audio.load_audio(path)
    # Sample-aligned and at full length: no encoder delay or padding left in (the lossy ones within codec noise).
    assert back.size == clip.size
    assert np.corrcoef(back, clip)[0, 1] > (0.999 if name in ("wav", "flac") else 0.95)
    assert np.corrcoef(back[3:], clip[:-3])[0, 1] < np.corrcoef(back, clip)[0, 1] - 0.01  # a 3-sample shift would show
    # ... so a loop stays a loop: the seam is no larger a jump than the clip's own, and level across it.
    seam = seam_metrics(back)
    assert seam["seam_jump"] <= seam["p999_jump"] and seam["rms_difference_db"] < 3.0
    if name in ("ogg", "mp3"):
        assert path.stat().st_size < len(audio.to_wav_bytes(clip)) / 4


def test_an_output_format_must_be_one_we_write():
    with pytest.raises(ValueError, match="use one of wav, flac, ogg, mp3"):
        audio.encode_audio(np.zeros(100, dtype=np.float32), "aiff")
    with pytest.raises(ValueError, match="end the name in .wav, .flac, .ogg, .mp3"):
        audio.format_of_path("clip.aiff")
    assert audio.format_of_path("Loop.OGG") == "ogg"


def test_two_minutes_encode_in_every_format_without_crashing_the_process():
    # Regression: libvorbis copies each write onto the stack, and a 120 s clip written in one call
    # overflowed it (a segfault that took the whole server down). A subprocess, so that a crash is a
    # failing test and not a dead test run.
    import subprocess
    import sys

    code = (
        "import numpy as np\n"
        "from moodmusic.audio import encode_audio, load_audio\n"
        "x = (0.1 * np.random.default_rng(0).standard_normal(120 * 22050)).astype(np.float32)\n"
        "for name in ('wav', 'flac', 'ogg', 'mp3'):\n"
        "    assert load_audio(encode_audio(x, name)).size == x.size, name\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr[-2000:]}"
