"""Loop points and bar markers written into the audio files, where game engines read them.

- WAV: a `smpl` chunk with one forward loop (what Godot's WAV importer, samplers and Wwise read), and a
  `cue ` chunk with a `LIST`/`adtl` of `labl` names: one marker per bar line ("bar 1", "bar 2", ...), as
  Wwise and most editors show them. The `smpl` loop's end is its last sample (the RIFF convention: an
  inclusive end); the manifests here give the exclusive end (`loop_end` = `loop_start` + `loop_length`),
  as engine APIs take it.
- Ogg Vorbis: `LOOPSTART` and `LOOPLENGTH` comments (samples), the RPG Maker convention that several
  engines and players read; written with mutagen, a maintained tag library.

    from moodmusic.loopfiles import wav_bytes, read_wav_markers
    data = wav_bytes(samples, 22050, loop=(0, samples.size), markers=[(0, "bar 1"), (88200, "bar 2")])
    read_wav_markers(data)   # {"loop_start": 0, "loop_end": N, "markers": [(0, "bar 1"), (88200, "bar 2")], ...}
"""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path

import numpy as np

from moodmusic.mel import SAMPLE_RATE

RIFF_FORM = b"WAVE"
OUTPUT_SAMPLE_RATES = (22050, 44100, 48000)  # 22,050 Hz is the models' own rate; engines mix at 44.1 or 48 kHz
LOOP_PAD = 1176  # samples of wrap-around a loop is resampled with: a whole number of samples at every output rate


def _chunk(name: bytes, payload: bytes) -> bytes:
    """A RIFF chunk: its id, its size, the payload, and a pad byte to an even length."""
    return name + struct.pack("<I", len(payload)) + payload + (b"\0" if len(payload) % 2 else b"")


def pcm16(samples: np.ndarray) -> bytes:
    """Mono float samples in [-1, 1] -> 16-bit little-endian PCM (rounded, as libsndfile writes them)."""
    return np.rint(np.clip(np.asarray(samples, dtype=np.float64), -1.0, 1.0) * 32767).astype("<i2").tobytes()


def wav_bytes(samples: np.ndarray, sample_rate: int, loop: tuple[int, int] | None = None, markers: list[tuple[int, str]] = ()) -> bytes:
    """A 16-bit mono WAV of `samples` with a forward loop over [loop[0], loop[1]) in its `smpl` chunk and
    `markers` (sample, label) as cue points with `labl` names."""
    frames = int(np.asarray(samples).shape[0])
    chunks = [
        _chunk(b"fmt ", struct.pack("<HHIIHH", 1, 1, sample_rate, sample_rate * 2, 2, 16)),
        _chunk(b"data", pcm16(samples)),
    ]
    if loop is not None:
        start, end = int(loop[0]), int(loop[1])
        if not 0 <= start < end <= frames:
            raise ValueError(f"the loop [{start}, {end}) must lie within the {frames} samples")
        header = struct.pack("<9I", 0, 0, round(1e9 / sample_rate), 60, 0, 0, 0, 1, 0)  # period in ns, unity note 60, one loop
        chunks.append(_chunk(b"smpl", header + struct.pack("<6I", 0, 0, start, end - 1, 0, 0)))  # forward, end inclusive, forever
    if markers:
        points = b"".join(struct.pack("<II4sIII", i + 1, int(s), b"data", 0, 0, int(s)) for i, (s, _) in enumerate(markers))
        chunks.append(_chunk(b"cue ", struct.pack("<I", len(markers)) + points))
        labels = b"".join(_chunk(b"labl", struct.pack("<I", i + 1) + label.encode("utf-8") + b"\0") for i, (_, label) in enumerate(markers))
        chunks.append(_chunk(b"LIST", b"adtl" + labels))
    body = RIFF_FORM + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def read_wav_markers(data: bytes | str | os.PathLike) -> dict:
    """What a WAV's `smpl`, `cue ` and `labl` chunks say: loop_start, loop_end (exclusive; None without a loop),
    markers [(sample, label)], sample_rate, frames.

    >>> data = wav_bytes(np.zeros(44100, dtype=np.float32), 22050, loop=(0, 44100), markers=[(0, "bar 1"), (22050, "bar 2")])
    >>> said = read_wav_markers(data)
    >>> said["loop_start"], said["loop_end"], said["markers"], said["frames"]
    (0, 44100, [(0, 'bar 1'), (22050, 'bar 2')], 44100)
    """
    raw = Path(data).read_bytes() if not isinstance(data, (bytes, bytearray)) else bytes(data)
    if raw[:4] != b"RIFF" or raw[8:12] != RIFF_FORM:
        raise ValueError("not a RIFF WAVE file")
    out: dict = {"loop_start": None, "loop_end": None, "markers": [], "sample_rate": None, "frames": None}
    positions, labels = {}, {}
    stream = io.BytesIO(raw[12:])
    while header := stream.read(8):
        if len(header) < 8:
            break
        name, size = header[:4], struct.unpack("<I", header[4:])[0]
        payload = stream.read(size + (size % 2))[:size]
        if name == b"fmt ":
            channels, out["sample_rate"], block = struct.unpack("<H", payload[2:4])[0], struct.unpack("<I", payload[4:8])[0], struct.unpack("<H", payload[12:14])[0]
            out["channels"] = channels
            out["_block"] = block
        elif name == b"data":
            out["_data_bytes"] = size
        elif name == b"smpl" and struct.unpack("<I", payload[28:32])[0] >= 1:
            _, _, start, end, _, _ = struct.unpack("<6I", payload[36:60])
            out["loop_start"], out["loop_end"] = start, end + 1
        elif name == b"cue ":
            for i in range(struct.unpack("<I", payload[:4])[0]):
                cue_id, position = struct.unpack("<II", payload[4 + 24 * i : 12 + 24 * i])
                positions[cue_id] = struct.unpack("<I", payload[24 + 24 * i : 28 + 24 * i])[0]
        elif name == b"LIST" and payload[:4] == b"adtl":
            inner = io.BytesIO(payload[4:])
            while sub := inner.read(8):
                sub_size = struct.unpack("<I", sub[4:])[0]
                body = inner.read(sub_size + (sub_size % 2))[:sub_size]
                if sub[:4] == b"labl":
                    labels[struct.unpack("<I", body[:4])[0]] = body[4:].split(b"\0")[0].decode("utf-8")
    if "_data_bytes" in out:
        out["frames"] = out.pop("_data_bytes") // out.pop("_block")
    out["markers"] = [(positions[i], labels.get(i, "")) for i in sorted(positions)]
    return out


def tag_ogg_loop(path: str | os.PathLike, loop_start: int, loop_length: int) -> None:
    """Write LOOPSTART and LOOPLENGTH (samples) into an Ogg Vorbis file's comments."""
    from mutagen.oggvorbis import OggVorbis

    tags = OggVorbis(str(path))
    tags["LOOPSTART"], tags["LOOPLENGTH"] = str(int(loop_start)), str(int(loop_length))
    tags.save()


def read_ogg_loop(path: str | os.PathLike) -> tuple[int, int] | None:
    """(LOOPSTART, LOOPLENGTH) from an Ogg Vorbis file's comments, or None."""
    from mutagen.oggvorbis import OggVorbis

    tags = OggVorbis(str(path))
    if "LOOPSTART" not in tags or "LOOPLENGTH" not in tags:
        return None
    return int(tags["LOOPSTART"][0]), int(tags["LOOPLENGTH"][0])


def check_sample_rate(rate: int) -> int:
    if isinstance(rate, bool) or rate not in OUTPUT_SAMPLE_RATES:
        raise ValueError(f"sample_rate must be one of {', '.join(map(str, OUTPUT_SAMPLE_RATES))}, got {rate!r}")
    return int(rate)


def to_rate(samples: np.ndarray, rate: int, length: int | None = None, loop: bool = False) -> np.ndarray:
    """Mono samples at 22,050 Hz -> at `rate` (soxr, very high quality), `length` samples long (default: the
    same duration, rounded). A loop is resampled as it plays round (its end runs into its start), so the seam
    stays as seamless as it was; cut to exactly `length` samples (a whole number of bars at the new rate)."""
    import soxr

    samples = np.asarray(samples, dtype=np.float32)
    length = round(samples.size * rate / SAMPLE_RATE) if length is None else int(length)
    if rate == SAMPLE_RATE and length == samples.size:
        return samples
    if loop:
        pad = min(LOOP_PAD, samples.size // 147 * 147)  # 147 samples at 22,050 Hz are 294 at 44,100 and 320 at 48,000
        wrapped = np.concatenate([samples[samples.size - pad :], samples, samples[:pad]]) if pad else samples
        out = soxr.resample(wrapped, SAMPLE_RATE, rate, quality="VHQ")
        skip = round(pad * rate / SAMPLE_RATE)
        out = out[skip : skip + length]
    else:
        out = soxr.resample(samples, SAMPLE_RATE, rate, quality="VHQ")[:length]
    return np.pad(out, (0, max(0, length - out.size))).astype(np.float32)


def _tag_loop(data: bytes, format: str, start: int, length: int) -> bytes:
    """LOOPSTART/LOOPLENGTH comments in the bytes of an Ogg Vorbis or FLAC file."""
    from mutagen.flac import FLAC
    from mutagen.oggvorbis import OggVorbis

    buffer = io.BytesIO(data)
    tags = {"ogg": OggVorbis, "flac": FLAC}[format](buffer)
    tags["LOOPSTART"], tags["LOOPLENGTH"] = str(int(start)), str(int(length))
    buffer.seek(0)
    tags.save(buffer)
    return buffer.getvalue()


def encode_clip(samples: np.ndarray, format: str = "wav", sample_rate: int = SAMPLE_RATE, grid=None, loop: bool = False) -> tuple[bytes, dict]:
    """A clip as it leaves the system: (file bytes, its points), the chain's 22,050 Hz `samples` resampled to
    `sample_rate` (a loop to exactly its whole bars at that rate), then `encode_at_rate`."""
    rate = check_sample_rate(sample_rate)
    length = grid.bar_samples(round(np.asarray(samples).size / SAMPLE_RATE / grid.bar_seconds), rate) if (loop and grid is not None) else None
    audio = to_rate(samples, rate, length, loop=loop)
    return encode_at_rate(audio, format, rate, grid, loop), audio_points(audio.size, rate, grid, loop)


def audio_points(samples: int, sample_rate: int, grid=None, loop: bool = False) -> dict:
    """sample_rate, samples, bar_starts and (a loop) loop_start, loop_end (exclusive), loop_length, in samples at
    `sample_rate`: what the file's markers say, as bank.json and the API report them."""
    starts = (round(t * sample_rate) for t in grid.bars(samples / sample_rate)) if grid is not None else ()
    bars = [b for b in starts if b < samples]  # a bar line that rounds onto the end is the next loop's first
    points = {"sample_rate": int(sample_rate), "samples": int(samples), "bar_starts": bars}
    if loop:
        points.update(loop_start=0, loop_end=int(samples), loop_length=int(samples))
    return points


def encode_at_rate(audio: np.ndarray, format: str, sample_rate: int, grid=None, loop: bool = False) -> bytes:
    """Mono samples at `sample_rate` -> file bytes with the markers a game engine reads. With a `grid`
    (moodmusic.tempo.Grid, beat 1 at the first sample) every bar line is a cue marker in a WAV; a loop (the
    whole file) carries its loop points: a WAV's `smpl` chunk, an Ogg Vorbis or FLAC file's
    LOOPSTART/LOOPLENGTH comments (MP3 has no such field: use the numbers of `audio_points`)."""
    from moodmusic.audio import encode_audio

    points = audio_points(audio.size, sample_rate, grid, loop)
    if format == "wav" and (loop or points["bar_starts"]):
        markers = [(b, f"bar {i + 1}") for i, b in enumerate(points["bar_starts"])]
        return wav_bytes(audio, sample_rate, loop=(0, audio.size) if loop else None, markers=markers)
    data = encode_audio(audio, format, sample_rate)
    return _tag_loop(data, format, 0, audio.size) if loop and format in ("ogg", "flac") else data
