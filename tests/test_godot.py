"""A real game engine reads our loop points: Godot 3.2.3 (Debian's godot3-server, installed by scripts/setup.sh)
imports a small bank's WAV files headless and reports what it got (games/godot_check.py, games/godot/).

Godot is required, not optional: CI installs it with scripts/setup.sh, so a missing Godot fails these tests.
"""

from __future__ import annotations

import json
import math
import os
import struct
import time
from pathlib import Path

import numpy as np
import pytest

from moodmusic.games.godot_check import SETUP_HINT, GodotError, compare_with_bank, expected_godot_loop, find_godot, read_bank_with_godot
from moodmusic.loopfiles import read_wav_markers, wav_bytes

# (file, sample rate, bpm, beats per bar, first loop bar, loop bars, file length in bars): three rates, three
# tempi and metres; a loop that starts after a pickup bar and one with a half-bar tail after the loop end.
BANK = [
    ("r0_c0_v0.wav", 22050, 120.0, 4, 0, 1, 1.5),  # bar 2 s = 44,100 samples; 3 s
    ("r0_c1_v0.wav", 44100, 150.0, 3, 0, 2, 2.0),  # bar 1.2 s = 52,920 samples; 2.4 s
    ("r0_c2_v0.wav", 48000, 144.0, 4, 1, 1, 2.0),  # bar 1.667 s = 80,000 samples; loop over bar 2 of 2; 3.33 s
]


def make_bank(folder: Path) -> dict:
    """A bank as `moodmusic bank` lays it out: WAV files with smpl loops and bar markers, and bank.json (with an
    Ogg entry, which Godot 3 cannot read loop points from and the check skips)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    loops = []
    for name, rate, bpm, beats, first, bars, length in BANK:
        bar = round(rate * 60.0 / bpm * beats)
        samples = round(length * bar)
        t = np.arange(samples) / rate
        audio = 0.25 * np.sin(2 * np.pi * 220.0 * t) + 0.05 * rng.standard_normal(samples)
        bar_starts = list(range(0, samples, bar))
        start, end = first * bar, (first + bars) * bar
        (folder / name).write_bytes(wav_bytes(audio, rate, loop=(start, end), markers=[(s, f"bar {i + 1}") for i, s in enumerate(bar_starts)]))
        loops.append({"file": name, "sample_rate": rate, "samples": samples, "loop_start": start, "loop_end": end, "loop_length": end - start,
                      "bpm": bpm, "beats_per_bar": beats, "bars": bars, "bar_starts": bar_starts, "seed": 0})  # fmt: skip
    loops.append({"file": "r1_c0_v0.ogg", "sample_rate": 22050, "samples": 44100, "loop_start": 0, "loop_end": 44100, "loop_length": 44100})
    manifest = {"tempo": 120.0, "sample_rate": 22050, "loops": loops}
    (folder / "bank.json").write_text(json.dumps(manifest, indent=2))
    return manifest


def godot_processes(marker: str) -> list[str]:
    """Command lines of running processes that mention `marker` (a project folder)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and proc.name != str(os.getpid()):
            try:
                line = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if marker in line and "godot" in line:
                found.append(line)
    return found


@pytest.fixture(scope="module")
def godot_run(tmp_path_factory):
    """One Godot run for the tests below: (bank.json, Godot's report, seconds, project folder), or why it failed
    (each test then fails with that, rather than erroring in the fixture)."""
    if find_godot() is None:
        return SETUP_HINT
    root = tmp_path_factory.mktemp("godot")
    manifest = make_bank(root / "bank")
    started = time.monotonic()
    try:
        report = read_bank_with_godot(root / "bank", positions=(0.5, 2.3), lanes=3, timeout=110, keep=root / "work")
    except GodotError as error:
        return f"Godot failed: {error}"
    return manifest, report, time.monotonic() - started, root / "work"


def need(godot_run):
    if isinstance(godot_run, str):
        pytest.fail(godot_run, pytrace=False)
    return godot_run


def test_our_smpl_loop_end_is_the_last_sample(tmp_path):
    """What Godot is given: smpl dwEnd = the loop's last sample (RIFF), which our reader turns back into bank.json's
    exclusive loop_end."""
    manifest = make_bank(tmp_path)
    for entry in manifest["loops"][:3]:
        raw = (tmp_path / entry["file"]).read_bytes()
        smpl = raw.index(b"smpl") + 8
        assert struct.unpack("<2I", raw[smpl + 44 : smpl + 52]) == (entry["loop_start"], entry["loop_end"] - 1)
        assert read_wav_markers(tmp_path / entry["file"])["loop_end"] == entry["loop_end"]


def test_godot_reads_every_wav_loop_as_bank_json_says(godot_run):
    manifest, report, seconds, _ = need(godot_run)
    assert report["godot_version"].startswith("3."), report["godot_version"]
    wavs = [entry for entry in manifest["loops"] if entry["file"].endswith(".wav")]
    assert set(report["files"]) == {entry["file"] for entry in wavs}
    assert report["skipped"] == ["r1_c0_v0.ogg"]
    for entry in wavs:
        got = report["files"][entry["file"]]
        # The convention Godot 3.2.3 uses (found by running it): its WAV importer copies the smpl chunk's
        # dwStart and dwEnd unchanged, so loop_begin == loop_start and loop_end == dwEnd == bank.json's
        # exclusive loop_end - 1 (the loop's last sample). The default import option edit/loop=false does not
        # matter: edit/loop only adds a loop (0..frames) to files that have no smpl loop.
        assert got["loop_mode"] == "forward", (entry["file"], got)
        assert got["loop_begin"] == entry["loop_start"], (entry["file"], got)
        assert got["loop_end"] == entry["loop_end"] - 1, (entry["file"], got)
        assert got["mix_rate"] == entry["sample_rate"], (entry["file"], got)
        assert got["frames"] == entry["samples"], (entry["file"], got)
        assert not got["stereo"] and math.isclose(got["length_s"], entry["samples"] / entry["sample_rate"], abs_tol=1e-5)
        assert {key: got[key] for key in expected_godot_loop(entry)} == expected_godot_loop(entry)
    assert compare_with_bank(manifest, report) == []
    assert report["import_runs"] >= 1 and report["commands"]["import"][-2:] == ["--editor", "--quit"]
    assert seconds < 100, f"the Godot check took {seconds:.0f} s"


def test_godot_switches_clips_on_bar_lines(godot_run):
    manifest, report, _, _ = need(godot_run)
    timing = {entry["file"]: entry for entry in manifest["loops"]}
    switches = report["switches"]
    assert len(switches) == 6, switches  # 3 players x 2 switches
    assert {s["from"] for s in switches} == {name for name, *_ in BANK}
    assert any(s["loop_wraps"] >= 1 for s in switches), "no switch was asked for after a loop wrapped"
    for s in switches:
        entry = timing[s["from"]]
        bar = 60.0 / entry["bpm"] * entry["beats_per_bar"]
        beat = 60.0 / entry["bpm"]
        # Scheduled strictly after the playback position it was asked at, on the next bar line (within 1 ms).
        assert s["asked_at"] >= s["requested"] and s["asked_at"] < s["scheduled"] <= s["asked_at"] + bar + 1e-3, s
        assert abs(s["scheduled"] / bar - round(s["scheduled"] / bar)) * bar < 1e-3, s
        assert abs(s["next_beat"] / beat - round(s["next_beat"] / beat)) * beat < 1e-3 and s["asked_at"] < s["next_beat"] <= s["scheduled"] + 1e-3, s
        # Godot played the clip (Dummy audio driver, real time) and the switch happened when its playback
        # position reached the bar line: never early, late by at most a mix or two.
        assert -1e-3 <= s["switched_at"] - s["scheduled"] < 0.25, s
    assert report["playback"] and all(p["advanced"] and p["position_readings"] > 10 for p in report["playback"])


def test_godot_leaves_no_process_behind(godot_run):
    *_, work = need(godot_run)
    deadline = time.monotonic() + 5
    while godot_processes(str(work)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert godot_processes(str(work)) == []


def test_compare_with_bank_catches_an_exclusive_end_and_an_off_grid_switch():
    """compare_with_bank (what a benchmark runs on a real bank) flags what Godot would get wrong; no Godot needed."""
    entry = {"file": "a.wav", "sample_rate": 22050, "samples": 44100, "loop_start": 0, "loop_end": 44100, "bpm": 120.0, "beats_per_bar": 4}
    good = {"files": {"a.wav": {"loaded": True, **expected_godot_loop(entry)}}, "switches": [], "playback": []}
    assert compare_with_bank({"loops": [entry]}, good) == []
    bad = json.loads(json.dumps(good))
    bad["files"]["a.wav"]["loop_end"] = 44100
    bad["switches"] = [{"lane": 0, "from": "a.wav", "to": "a.wav", "bpm": 120.0, "beats_per_bar": 4, "bar_s": 2.0, "first_bar_s": 0.0,
                        "requested": 0.5, "asked_at": 0.51, "scheduled": 1.0, "switched_at": 1.0}]  # fmt: skip
    problems = compare_with_bank({"loops": [entry]}, bad)
    assert any("loop_end is 44100" in p for p in problems) and any("off the bar grid" in p for p in problems), problems
