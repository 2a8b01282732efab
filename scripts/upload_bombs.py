"""What hostile uploads cost the server: resident memory and time, measured on a real `moodmusic serve`.

Starts the server with the shipped models on loopback (its own process, so its memory is measured alone),
uploads each case to /v1/analyze, samples the server's resident memory every 5 ms while the request runs,
and writes docs/abuse.md. Usage: .venv/bin/python scripts/upload_bombs.py [--out docs]
"""

from __future__ import annotations

import argparse
import io
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import soundfile

from moodmusic.evaluation.bench import PeakMemory
from moodmusic.evaluation.tiny import silent_flac
from moodmusic.server.background import free_port, wait_until_ready


def wav_header_only(seconds: float, rate: int, channels: int) -> bytes:
    """A WAV header declaring `seconds` of 16-bit audio, followed by 1 s of it (a lying length)."""
    frames = int(seconds * rate)
    data_bytes = frames * channels * 2
    header = b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * channels * 2, channels * 2, 16)
    return header + b"data" + struct.pack("<I", data_bytes) + np.zeros(rate * channels, dtype="<i2").tobytes()


def declared_rate_wav(rate: int) -> bytes:
    data = np.zeros(4000, dtype="<i2").tobytes()
    return b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16) + b"data" + struct.pack("<I", len(data)) + data


def measure(server_pid: int, url: str, name: str, data: bytes) -> dict:
    with PeakMemory(pid=server_pid) as memory:
        started = time.perf_counter()
        response = httpx.post(url + "/v1/analyze", files={"file": (name, data)}, data={"narrate": "false"}, timeout=120)
        seconds = time.perf_counter() - started
    body = response.json()
    return {"status": response.status_code, "seconds": seconds, "rss_rise_mb": memory.rise_mb,
            "analysed_seconds": body.get("analyzed_seconds"), "detail": body.get("detail")}  # fmt: skip


def streamed_wav_upload(server_pid: int, url: str, seconds: float, rate: int, channels: int) -> dict:
    """A real WAV of `seconds` of silence (far over the upload limit), streamed as a multipart body with its
    Content-Length, never held in memory here: the server should refuse it before reading it."""
    boundary = "moodmusicbomb"
    frames = int(seconds * rate)
    data_bytes = frames * channels * 2
    header = b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * channels * 2, channels * 2, 16)
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"hour.wav\"\r\n\r\n").encode() + header + b"data" + struct.pack("<I", data_bytes)
    tail = f"\r\n--{boundary}--\r\n".encode()
    total = len(head) + data_bytes + len(tail)

    def body():
        yield head
        block = bytes(1 << 20)
        for start in range(0, data_bytes, len(block)):
            yield block[: min(len(block), data_bytes - start)]
        yield tail

    with PeakMemory(pid=server_pid) as memory:
        started = time.perf_counter()
        try:
            response = httpx.post(url + "/v1/analyze", content=body(), timeout=120,
                                  headers={"content-type": f"multipart/form-data; boundary={boundary}", "content-length": str(total)})  # fmt: skip
            status, detail = response.status_code, response.json().get("detail")
        except httpx.HTTPError as error:  # the server may close the connection while the body is still being sent
            status, detail = None, f"connection closed while sending ({type(error).__name__})"
        seconds_taken = time.perf_counter() - started
    return {"status": status, "seconds": seconds_taken, "rss_rise_mb": memory.rise_mb, "analysed_seconds": None, "detail": detail, "bytes": total}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs")
    parser.add_argument("--also-limit", type=float, default=600.0, help="measure the silent FLAC again on a server analysing at most this many seconds")
    args = parser.parse_args()
    rows = run_cases(None)
    shorter = run_cases(args.also_limit, only_first=True)[0]
    write_report(Path(args.out, "abuse.md"), rows, (args.also_limit, shorter))
    return 0


def start_server(analyze_max_seconds: float | None):
    import os

    port = free_port()
    store = tempfile.mkdtemp(prefix="moodmusic-store-")
    env = dict(os.environ, **({"MOODMUSIC_ANALYZE_MAX_SECONDS": str(analyze_max_seconds)} if analyze_max_seconds else {}))
    process = subprocess.Popen([sys.executable, "-m", "moodmusic.server.cli", "--port", str(port), "--store", store + "/s"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env=env)  # fmt: skip
    return process, f"http://127.0.0.1:{port}"


def run_cases(analyze_max_seconds: float | None, only_first: bool = False) -> list:
    process, url = start_server(analyze_max_seconds)
    try:
        wait_until_ready(process, url)
        cases = [
            ("two hours of silence, FLAC 44.1 kHz", "silence.flac", silent_flac(7200)),
            ("a WAV whose header declares one hour of 48 kHz stereo (1 s present)", "liar.wav", wav_header_only(3600, 48000, 2)),
            ("a WAV that declares 1 Hz", "one-hertz.wav", declared_rate_wav(1)),
            ("one sample", "one.wav", declared_rate_wav(22050)[:44] + b"\0\0"),
            ("5 minutes of noise, FLAC 44.1 kHz (the analysis limit: the cost of real work)", "noise.flac", None),
        ]
        rows = []
        for label, name, data in cases[:1] if only_first else cases:
            if data is None:
                buffer = io.BytesIO()
                soundfile.write(buffer, (np.random.default_rng(0).normal(0, 0.1, 44100 * 300)).astype(np.float32), 44100, format="FLAC")
                data = buffer.getvalue()
            measure(process.pid, url, name, data) if not rows else None  # the first request also warms lazy imports
            result = measure(process.pid, url, name, data)
            rows.append((label, len(data), result))
            print(label, result, flush=True)
        if not only_first:
            hour = streamed_wav_upload(process.pid, url, 3600, 48000, 2)
            rows.insert(2, ("one hour of 48 kHz stereo WAV (691 MB, streamed with its Content-Length)", hour["bytes"], hour))
            print("hour wav", hour, flush=True)
    finally:
        process.terminate()
        process.wait(30)
    return rows


def write_report(path: Path, rows: list, shorter: tuple) -> None:
    bomb = rows[0][2]
    met = bomb["rss_rise_mb"] < 300 and bomb["seconds"] < 2
    lines = [
        "# What hostile uploads cost the server",
        "",
        f"Measured with `.venv/bin/python scripts/upload_bombs.py` on {time.strftime('%Y-%m-%d')} (2-core CPU): a real `moodmusic serve` with",
        "the shipped models on loopback; each upload to `/v1/analyze` (narration off) is sent twice and the second is measured; the",
        "server's resident memory is sampled every 5 ms while it runs. Targets: a two-hour FLAC of silence (and a one-hour 48 kHz",
        f"stereo WAV) raises memory by less than 300 MB and costs less than 2 s: {'met' if met else 'not met for the FLAC'}"
        f" ({bomb['rss_rise_mb']:.0f} MB, {bomb['seconds']:.1f} s). Only the analysed seconds are decoded (300 s by default; block by",
        "block, soxr's streaming resampler), the mel and chroma run 24 s at a time, the loudness meter K-weights 12 s at a time, and",
        "the classifier reads 16 windows at a time, so such a file costs what a real upload of the analysed length costs: the",
        "analysis itself (the chroma's 4096-point STFT and the windows' forward passes). The same FLAC before this work, on a",
        "600 s limit: +3.9 GiB, about 20 s. A WAV over the 50 MB upload limit is refused from its Content-Length before its body is read.",
        "",
        f"The same FLAC on a server that analyses up to {shorter[0]:g} s (`--analyze-max-seconds {shorter[0]:g}`): "
        f"{shorter[1][2]['rss_rise_mb']:.0f} MB, {shorter[1][2]['seconds']:.2f} s: the cost follows the analysed seconds.",
        "",
        "| upload | bytes | status | seconds | server memory rise | analysed | answer |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, size, r in rows:
        analysed = "" if r["analysed_seconds"] is None else f"{r['analysed_seconds']:.0f} s"
        lines.append(f"| {label} | {size:,} | {r['status']} | {r['seconds']:.2f} | {r['rss_rise_mb']:.0f} MB | {analysed} | {(r['detail'] or '')[:110]} |")
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
