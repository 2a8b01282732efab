"""Audio in and out: any file a user has -> mono float32 at 22,050 Hz; clips out as 16-bit WAV, or
FLAC, OGG Vorbis or MP3 when asked for (docs/conventions.md).

soundfile (libsndfile) reads WAV, FLAC and OGG; MP3 and anything else goes through librosa's
audioread fallback. Empty or undecodable input raises `AudioDecodeError` with a message that
says what was wrong, so callers (the CLI, the HTTP server) can show it as it is.
"""

from __future__ import annotations

import io
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

from moodmusic.mel import SAMPLE_RATE

@dataclass(frozen=True)
class OutputFormat:
    """How clips are written in one output format (an entry of OUTPUT_FORMATS): the libsndfile format and the HTTP media type."""

    container: str  # libsndfile's format and subtype
    subtype: str
    media_type: str
    lossless: bool  # another format can be made from it without a second generation loss


# WAV and FLAC are lossless; OGG Vorbis is what game engines stream (about a tenth of the WAV's size).
# An MP3 carries its encoder's delay and padding in a header that libsndfile and browsers honour (it
# decodes here sample-aligned, at its full length) but not every decoder does: for loops, prefer OGG.
OUTPUT_FORMATS = {
    "wav": OutputFormat("WAV", "PCM_16", "audio/wav", lossless=True),
    "flac": OutputFormat("FLAC", "PCM_16", "audio/flac", lossless=True),
    "ogg": OutputFormat("OGG", "VORBIS", "audio/ogg", lossless=False),
    "mp3": OutputFormat("MP3", "MPEG_LAYER_III", "audio/mpeg", lossless=False),
}
SUPPORTED_FORMATS = tuple(OUTPUT_FORMATS)  # read as well as written (any other that audioread decodes is read too)


class AudioDecodeError(ValueError):
    """The input is not audio we can decode, or holds no samples."""


def _to_mono(samples: np.ndarray) -> np.ndarray:
    return samples.mean(axis=1) if samples.ndim == 2 else samples


def resample(samples: np.ndarray, source_rate: int, target_rate: int = SAMPLE_RATE) -> np.ndarray:
    if source_rate == target_rate:
        return samples.astype(np.float32, copy=False)
    import librosa  # imported lazily: it takes a second to import and most paths never resample

    return librosa.resample(samples.astype(np.float32), orig_sr=source_rate, target_sr=target_rate, res_type="soxr_hq")


# Sample rates a real recording can have; a header that declares another (1 Hz, 10 MHz) is refused before
# decoding, since it would turn a few kilobytes into hours of audio or a huge resampling job.
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 4_000, 384_000
BLOCK_FRAMES = 1 << 16  # frames decoded at a time: memory holds one block of the source, never the whole file


class AudioTooShortError(ValueError):
    """Audio too short to analyse (the server answers 422 with the minimum length)."""


def _check_rate(rate: int, name: str) -> None:
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise AudioDecodeError(f"{name}: the file declares a sample rate of {rate:,} Hz; supported rates are {MIN_SAMPLE_RATE:,} to {MAX_SAMPLE_RATE:,} Hz")


def _decode_with_librosa(path: str, max_seconds: float | None) -> tuple[np.ndarray, int]:
    import librosa

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # audioread's "PySoundFile failed" warning is expected here
        samples, rate = librosa.load(path, sr=None, mono=True, duration=max_seconds)  # stops decoding at the limit
    return samples, int(rate)


def load_audio(source: str | os.PathLike | bytes, *, max_seconds: float | None = None) -> np.ndarray:
    """Decode a path or raw bytes to mono float32 at 22,050 Hz.

    `max_seconds` keeps only the start of very long input (the caller decides; None keeps all). Only that
    start is decoded, block by block, downmixed and resampled as it comes, so memory and time follow the
    seconds kept, not the file's length; a header with an absurd sample rate is refused before decoding.
    """
    name = "<bytes>" if isinstance(source, (bytes, bytearray)) else str(source)
    if not isinstance(source, (bytes, bytearray)) and not Path(source).is_file():
        raise AudioDecodeError(f"{name}: no such file")
    try:
        handle = soundfile.SoundFile(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else str(source))
    except Exception:
        samples, rate = _decode_fallback(source, name, max_seconds)
        _check_rate(rate, name)
        samples = resample(_to_mono(np.asarray(samples, dtype=np.float32)), rate)
    else:
        with handle:
            _check_rate(handle.samplerate, name)
            try:
                samples = _read_blocks(handle, None if max_seconds is None else int(max_seconds * handle.samplerate))
            except (RuntimeError, soundfile.LibsndfileError) as error:  # a header that reads, then a body that does not
                raise AudioDecodeError(f"{name}: could not decode as audio ({error})") from error
    if samples.size == 0:
        raise AudioDecodeError(f"{name}: the file decodes to no audio samples")
    if not np.all(np.isfinite(samples)):
        raise AudioDecodeError(f"{name}: the audio holds NaN or infinite samples")
    return samples


def _read_blocks(handle: soundfile.SoundFile, frames: int | None) -> np.ndarray:
    """Up to `frames` frames of an open file (None: all), as mono at 22,050 Hz, one block at a time;
    soxr's streaming resampler (the library librosa's soxr_hq calls) carries its state across blocks."""
    import soxr

    stream = None if handle.samplerate == SAMPLE_RATE else soxr.ResampleStream(handle.samplerate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
    pieces, remaining = [], frames
    while remaining is None or remaining > 0:
        block = handle.read(BLOCK_FRAMES if remaining is None else min(BLOCK_FRAMES, remaining), dtype="float32", always_2d=True)
        if len(block) == 0:
            break
        if remaining is not None:
            remaining -= len(block)
        mono = np.ascontiguousarray(block.mean(axis=1), dtype=np.float32)
        pieces.append(mono if stream is None else stream.resample_chunk(mono))
    if stream is not None:
        pieces.append(stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True))
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)


def _decode_fallback(source: str | os.PathLike | bytes, name: str, max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    """MP3 and other formats libsndfile does not read, through librosa/audioread."""
    try:
        if isinstance(source, (bytes, bytearray)):
            with tempfile.NamedTemporaryFile(suffix=".audio") as tmp:
                tmp.write(source)
                tmp.flush()
                return _decode_with_librosa(tmp.name, max_seconds)
        return _decode_with_librosa(str(source), max_seconds)
    except Exception as error:
        raise AudioDecodeError(
            f"{name}: could not decode as audio ({type(error).__name__}); supported formats: {', '.join(SUPPORTED_FORMATS)}"
        ) from error


def prevent_clipping(samples: np.ndarray, ceiling: float = 0.99) -> np.ndarray:
    """Scale down only if the peak would clip; loudness is otherwise kept (it is an arousal cue)."""
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    return samples * (ceiling / peak) if peak > ceiling else samples


def output_format(name: str) -> OutputFormat:
    """The output format called `name` ("wav", "flac", "ogg", "mp3"); ValueError for another."""
    if name not in OUTPUT_FORMATS:
        raise ValueError(f"unsupported audio format {name!r}; use one of {', '.join(OUTPUT_FORMATS)}")
    return OUTPUT_FORMATS[name]


def format_of_path(path: str | os.PathLike) -> str:
    """The output format a file name asks for, by its suffix (clip.ogg -> "ogg")."""
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in OUTPUT_FORMATS:
        raise ValueError(f"{path}: cannot tell the audio format from the suffix; end the name in {', '.join('.' + n for n in OUTPUT_FORMATS)}")
    return suffix


ENCODE_BLOCK_FRAMES = 16384


def encode_audio(samples: np.ndarray, format: str = "wav", sample_rate: int = SAMPLE_RATE) -> bytes:
    """Mono float samples in [-1, 1] -> the bytes of a file in `format` (16-bit for WAV and FLAC)."""
    spec = output_format(format)
    samples = np.clip(samples, -1.0, 1.0)
    buffer = io.BytesIO()
    with soundfile.SoundFile(buffer, "w", sample_rate, 1, subtype=spec.subtype, format=spec.container) as out:
        # In blocks: libvorbis copies each write onto the stack (alloca), and one write of two minutes
        # overflowed it and killed the process (a segfault: a 120 s OGG clip took the server down).
        for start in range(0, samples.shape[0], ENCODE_BLOCK_FRAMES):
            out.write(samples[start : start + ENCODE_BLOCK_FRAMES])
    return buffer.getvalue()


def to_wav_bytes(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> bytes:
    return encode_audio(samples, "wav", sample_rate)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write a file atomically: a temporary file, then a rename (a reader never sees half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_audio(path: str | os.PathLike, samples: np.ndarray, format: str | None = None, sample_rate: int = SAMPLE_RATE) -> None:
    """Write a clip atomically, in `format` or the one its suffix names."""
    write_bytes(path, encode_audio(samples, format or format_of_path(path), sample_rate))


def write_wav(path: str | os.PathLike, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write a 16-bit WAV atomically, whatever the suffix."""
    write_audio(path, samples, "wav", sample_rate)
