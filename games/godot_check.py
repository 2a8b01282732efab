"""What a real game engine reads from a bank: Godot 3 (Debian's `godot3-server`, 3.2.3) imports the bank's WAV
files and reports, per file, the loop points, mix rate and length it got, and plays clips to switch them on
bar lines (games/godot/, its README says how to run it by hand).

    from moodmusic.games.godot_check import read_bank_with_godot, compare_with_bank
    result = read_bank_with_godot(Path("bank"))       # the parsed JSON line of games/godot/check_bank.gd
    problems = compare_with_bank(json.loads(Path("bank/bank.json").read_text()), result)   # [] when all agree

    python -m moodmusic.games.godot_check bank/                  # the same, printed; exit code 1 on any problem

Godot 3.2.3's WAV importer copies the `smpl` loop's dwStart and dwEnd unchanged into the AudioStreamSample's
loop_begin and loop_end, so for our files (dwEnd = the loop's last sample) Godot's loop_end is bank.json's
exclusive loop_end - 1; the import option `edit/loop` only loops files without a `smpl` loop (over 0..frames).
Its mixer then plays the whole loop on the first pass and loop_start + 1 .. loop_end - 1 on every later pass
(one sample short a pass, 45 microseconds at 22,050 Hz: inaudible, and about 1 ms of drift after 22 passes).

Godot runs in a temporary copy of the project, with the bank's bank.json and WAV files copied (hard-linked
where possible) into it, since the import step writes `.import` files next to them; and with its own config,
data and cache folders, so it reads and writes nothing of the user's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent / "godot"
GODOT_ENV = "MOODMUSIC_GODOT"  # another Godot 3 binary; the default is godot3-server from scripts/setup.sh
SETUP_HINT = "Godot 3 is not installed: run scripts/setup.sh (it installs Debian's godot3-server), or set MOODMUSIC_GODOT"
IMPORT_TRIES = 3  # Godot 3.2.3's editor sometimes crashes (signal 11) while quitting after an import; see _import


class GodotError(RuntimeError):
    """Godot is missing, failed, or printed no report."""


def find_godot() -> str | None:
    """The Godot 3 binary to run: $MOODMUSIC_GODOT, else godot3-server (headless, with the editor's importer)."""
    wanted = os.environ.get(GODOT_ENV)
    if wanted:
        return shutil.which(wanted) or (wanted if Path(wanted).is_file() else None)
    return shutil.which("godot3-server")


def godot_version(godot: str | None = None) -> str:
    godot = godot or find_godot()
    if godot is None:
        raise GodotError(SETUP_HINT)
    return subprocess.run([godot, "--version"], capture_output=True, text=True, timeout=30, env=_environment(None)).stdout.strip()


def _environment(home: Path | None) -> dict:
    env = dict(os.environ)
    # Godot 3.2 takes its locale from LANG and prints an error for "C"; a name it knows keeps stderr clean.
    env.pop("LC_ALL", None)
    env["LANG"] = "en_US.UTF-8"
    if home is not None:
        for name, folder in (("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data"), ("XDG_CACHE_HOME", "cache")):
            (home / folder).mkdir(parents=True, exist_ok=True)
            env[name] = str(home / folder)
    return env


def _run(command: list[str], env: dict, timeout: float) -> subprocess.CompletedProcess:
    """Run Godot in its own process group, killing the whole group on a timeout so that nothing is left behind."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=max(timeout, 1.0))
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        raise GodotError(f"{' '.join(command)} ran past {timeout:.0f} s and was killed\n{_tail(stdout, stderr)}") from None
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def _tail(stdout: str, stderr: str, lines: int = 15) -> str:
    return "\n".join(("stdout: " + "\n".join(stdout.splitlines()[-lines:]), "stderr: " + "\n".join(stderr.splitlines()[-lines:])))


def _copy_project(bank_dir: Path, project: Path) -> list[str]:
    """The Godot project into `project`, with bank.json and the bank's WAV files at res://bank/; the WAV names."""
    shutil.copytree(PROJECT, project, ignore=shutil.ignore_patterns(".import", "bank", "*.import", "README.md"))
    manifest = json.loads((bank_dir / "bank.json").read_text())
    bank = project / "bank"
    bank.mkdir()
    shutil.copy2(bank_dir / "bank.json", bank / "bank.json")
    wavs = []
    for entry in manifest.get("loops", []):
        name = str(entry.get("file", ""))
        if not name.lower().endswith(".wav"):
            continue
        source, target = bank_dir / name, bank / name
        if not source.is_file():
            raise FileNotFoundError(f"bank.json lists {name}, which is not in {bank_dir}")
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, target)  # Godot only reads the WAV files
        except OSError:
            shutil.copy2(source, target)
        wavs.append(name)
    return wavs


def _imported(project: Path, wavs: list[str]) -> list[str]:
    """The WAV files whose import is missing: no .import file, or none of the resource it names."""
    missing = []
    for name in wavs:
        settings = project / "bank" / f"{name}.import"
        paths = [line.split("=", 1)[1].strip().strip('"') for line in settings.read_text().splitlines() if line.startswith("path=")] if settings.is_file() else []
        if not paths or not all((project / path.removeprefix("res://")).is_file() for path in paths):
            missing.append(name)
    return missing


def _import(godot: str, project: Path, wavs: list[str], env: dict, deadline: float) -> tuple[list[str], int]:
    """Run the editor's import step headless until every WAV file is imported; the command and how many runs.

    Godot 3.2.3's editor imports everything on its first scan, then `--quit` ends it; now and then it crashes with
    signal 11 in a thread on the way out, after the import has been written. So the exit code is not trusted:
    the .import files are checked, and the step is run again (it imports only what is missing) if need be.
    """
    command = [godot, "--path", str(project), "--audio-driver", "Dummy", "--editor", "--quit"]
    for attempt in range(1, IMPORT_TRIES + 1):
        result = _run(command, env, deadline - time.monotonic())
        missing = _imported(project, wavs)
        if not missing:
            return command, attempt
    raise GodotError(f"Godot imported none of {missing[:5]} after {IMPORT_TRIES} runs of {' '.join(command)} (exit code {result.returncode})\n{_tail(result.stdout, result.stderr)}")


def parse_report(stdout: str) -> dict:
    """The JSON line check_bank.gd prints (Godot prints its banner and any errors around it)."""
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                report = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(report, dict) and "files" in report:
                return report
    raise GodotError("check_bank.gd printed no JSON report")


def read_bank_with_godot(
    bank_dir: Path,
    *,
    positions: tuple[float, ...] = (0.5, 2.3),
    lanes: int = 3,
    play: bool = True,
    timeout: float = 120.0,
    godot: str | None = None,
    keep: Path | None = None,
) -> dict:
    """Import `bank_dir`'s WAV files with Godot 3 and return what games/godot/check_bank.gd reports.

    positions, lanes: the clip switches played (see check_bank.gd); play=False only reads the files. The whole
    run (copy, import, check) must end within `timeout` seconds. keep: a folder for the project (left in place,
    e.g. to open it in the editor) instead of a temporary one. The result also gives "commands" (the Godot command
    lines), "import_runs" and "seconds". Raises GodotError if Godot is missing, fails or times out.
    """
    bank_dir = Path(bank_dir)
    godot = godot or find_godot()
    if godot is None:
        raise GodotError(SETUP_HINT)
    started = time.monotonic()
    deadline = started + timeout
    work = Path(keep) if keep is not None else Path(tempfile.mkdtemp(prefix="moodmusic-godot-"))
    try:
        project = work / "project"
        if project.exists():
            shutil.rmtree(project)
        work.mkdir(parents=True, exist_ok=True)
        wavs = _copy_project(bank_dir, project)
        env = _environment(work / "home")
        import_command, import_runs = _import(godot, project, wavs, env, deadline)
        check_command = [godot, "--path", str(project), "--audio-driver", "Dummy", "--script", "res://check_bank.gd", f"--lanes={int(lanes)}",
                         "--positions=" + ",".join(f"{float(p):g}" for p in positions)] + ([] if play else ["--no-play"])  # fmt: skip
        result = _run(check_command, env, deadline - time.monotonic())
        try:
            report = parse_report(result.stdout)
        except GodotError as error:
            raise GodotError(f"{error}: {' '.join(check_command)} exited with {result.returncode}\n{_tail(result.stdout, result.stderr)}") from None
        if result.returncode != 0 or report.get("errors"):
            raise GodotError(f"{' '.join(check_command)} exited with {result.returncode}: {report.get('errors')}\n{_tail(result.stdout, result.stderr)}")
        report["commands"] = {"import": import_command, "check": check_command}
        report["import_runs"] = import_runs
        report["seconds"] = round(time.monotonic() - started, 3)
        return report
    finally:
        if keep is None:
            shutil.rmtree(work, ignore_errors=True)


def expected_godot_loop(entry: dict) -> dict:
    """What Godot 3.2.3 should read from a bank.json WAV entry: loop_begin = loop_start, loop_end = the smpl
    chunk's dwEnd = the exclusive loop_end - 1 (copied unchanged by its importer), a forward loop, the file's
    sample rate and length in frames."""
    return {"loop_mode": "forward", "loop_begin": int(entry["loop_start"]), "loop_end": int(entry["loop_end"]) - 1,
            "mix_rate": int(entry["sample_rate"]), "frames": int(entry["samples"])}  # fmt: skip


def compare_with_bank(manifest: dict, report: dict, bar_tolerance_s: float = 1e-3, max_switch_delay_s: float = 0.25) -> list[str]:
    """Every disagreement between bank.json and what Godot read or played; [] when none.

    Loop points, mode, mix rate and frames of every .wav entry (expected_godot_loop); every clip switch scheduled
    strictly after the position it was asked at and on a bar line of the clip playing (a multiple of
    60 / bpm * beats_per_bar from its first bar line, within bar_tolerance_s); every switch made when playback got
    there (not before the bar line, and less than max_switch_delay_s after it: Godot's position moves once a mix)."""
    problems = []
    files = report.get("files", {})
    for entry in manifest.get("loops", []):
        name = str(entry.get("file", ""))
        if not name.lower().endswith(".wav"):
            continue
        got = files.get(name)
        if not got or not got.get("loaded"):
            problems.append(f"{name}: Godot did not load it")
            continue
        for key, want in expected_godot_loop(entry).items():
            if got.get(key) != want:
                problems.append(f"{name}: Godot's {key} is {got.get(key)!r}, bank.json implies {want!r}")
    entries = {str(entry.get("file", "")): entry for entry in manifest.get("loops", [])}
    for switch in report.get("switches", []):
        where = f"lane {switch['lane']} {switch['from']} -> {switch['to']}"
        timing = entries.get(switch["from"], switch)  # the grid from bank.json, not from what Godot passed on
        bar = 60.0 / float(timing["bpm"]) * int(timing["beats_per_bar"])
        if abs(switch["bar_s"] - bar) > 1e-6:
            problems.append(f"{where}: MoodMusicGrid's bar is {switch['bar_s']} s, not {bar} s")
        bars = (switch["scheduled"] - switch.get("first_bar_s", 0.0)) / bar
        if abs(bars - round(bars)) * bar > bar_tolerance_s:
            problems.append(f"{where}: switch scheduled at {switch['scheduled']} s, {bars:.4f} bars, off the bar grid")
        if not switch["asked_at"] >= switch["requested"] or not switch["scheduled"] > switch["asked_at"]:
            problems.append(f"{where}: asked at {switch['asked_at']} s (for {switch['requested']} s), scheduled at {switch['scheduled']} s: not after")
        if switch["scheduled"] - switch["asked_at"] > bar + bar_tolerance_s:
            problems.append(f"{where}: scheduled {switch['scheduled'] - switch['asked_at']:.3f} s after asking, more than a bar")
        delay = switch["switched_at"] - switch["scheduled"]
        if not -bar_tolerance_s <= delay < max_switch_delay_s:
            problems.append(f"{where}: switched {delay * 1000:.1f} ms after the bar line at {switch['scheduled']} s")
    for playback in report.get("playback", []):
        if not playback.get("advanced"):
            problems.append(f"lane {playback['lane']} {playback['file']}: the playback position never advanced")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m moodmusic.games.godot_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("bank", type=Path, help="a bank folder (bank.json and its audio files)")
    parser.add_argument("--positions", default="0.5,2.3", help="song times (s) at which clip switches are asked, per lane")
    parser.add_argument("--lanes", type=int, default=3, help="players switching clips at once")
    parser.add_argument("--no-play", action="store_true", help="only read the files")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--keep", type=Path, help="leave the Godot project (with the imported bank) in this folder")
    args = parser.parse_args(argv)
    positions = tuple(float(p) for p in args.positions.split(",") if p.strip())
    report = read_bank_with_godot(args.bank, positions=positions, lanes=args.lanes, play=not args.no_play, timeout=args.timeout, keep=args.keep)
    problems = compare_with_bank(json.loads((args.bank / "bank.json").read_text()), report)
    report["problems"] = problems
    print(json.dumps(report, indent=2))
    print(f"godot: {len(report['files'])} WAV files, {len(report['switches'])} clip switches, {len(problems)} problems", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
