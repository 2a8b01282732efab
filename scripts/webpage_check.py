"""End-to-end check of the web page in headless Chromium (Debian's `chromium` + `chromium-driver`, selenium).

Starts the server on loopback, opens `/`, picks a mood on the pad, clicks Generate, and waits until the
clip plays, its mel image shows, the heard mood is drawn as bars and the narration is written; then
uploads a file in the Analyze tab; then, in the Live tab, starts the stream, waits for chunks, drags on
the pad and waits for a later chunk generated for the new mood, pauses, resumes and stops. Saves a
screenshot of the page after the generation (and optionally of the other tabs).

    .venv/bin/python scripts/webpage_check.py --screenshot docs/webpage.png                 # shipped checkpoints
    .venv/bin/python scripts/webpage_check.py --tiny --screenshot /tmp/page.png             # tiny untrained models (CI)
    .venv/bin/python scripts/webpage_check.py --tiny --steps live --live-screenshot /tmp/live.png

Prints a JSON summary; exits 1 when a step fails. Nothing is fetched from the network: the driver is
the system chromedriver, never selenium's downloader.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


class CheckFailed(AssertionError):
    pass


def find_browser() -> tuple[str, str]:
    """(chromium binary, chromedriver); CheckFailed naming what is missing."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    if not browser or not driver:
        raise CheckFailed("headless check needs chromium and chromedriver: apt-get install chromium chromium-driver")
    return browser, driver


def open_browser(width: int = 1400, height: int = 1280):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver = find_browser()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--autoplay-policy=no-user-gesture-required", f"--window-size={width},{height}", "--mute-audio"):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "SEVERE"})
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


def wait_for(driver, script: str, timeout: float, what: str):
    """Poll a JavaScript expression until it is truthy; CheckFailed saying what never happened."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(f"return ({script});")
        if value:
            return value
        time.sleep(0.1)
    status = driver.execute_script("return ['status', 'analyze-status', 'live-status'].map((id) => document.getElementById(id).textContent).join(' | ');")
    raise CheckFailed(f"timed out after {timeout:g} s waiting for {what} (page status: {status!r})")


STEPS = ("generate", "analyze", "live")


def run_check(base_url: str, screenshot: Path | None, seconds: float, timeout: float, analyze_screenshot: Path | None = None,
              steps: tuple[str, ...] = STEPS, live_chunks: int = 6, live_screenshot: Path | None = None) -> dict:  # fmt: skip
    report: dict = {}
    driver = open_browser()
    try:
        driver.get(base_url + "/")
        wait_for(driver, "document.getElementById('pad-readout').textContent.includes('near')", timeout, "the named moods on the pad")
        if "generate" in steps:
            report.update(check_generate(driver, screenshot, seconds, timeout))
        if "analyze" in steps:
            report.update(check_analyze(driver, timeout, analyze_screenshot))
        if "live" in steps:
            report["live"] = check_live(driver, base_url, timeout, live_chunks, live_screenshot)
        errors = [entry["message"] for entry in driver.get_log("browser")]
        if errors:
            raise CheckFailed(f"the page logged errors: {errors}")
        return report
    finally:
        driver.quit()


def click_pad(driver, valence: float, arousal: float) -> None:
    """Click the pad at (valence, arousal); ActionChains offsets are from the element's centre."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    pad = driver.find_element(By.ID, "pad")
    x, y = pad_offset(pad, valence, arousal)
    ActionChains(driver).move_to_element_with_offset(pad, x, y).click().perform()


def pad_offset(pad, valence: float, arousal: float) -> tuple[int, int]:
    """Pixel offset from the pad's centre of a mood point (app.js keeps an 18 px margin on a 340 px canvas)."""
    half_w, half_h = (pad.size["width"] / 2) * (1 - 36 / 340), (pad.size["height"] / 2) * (1 - 36 / 340)
    return round(valence * half_w), round(-arousal * half_h)


def pad_mood(driver) -> tuple[float, float]:
    return tuple(driver.execute_script("const d = document.getElementById('pad').dataset; return [Number(d.valence), Number(d.arousal)];"))


def check_generate(driver, screenshot: Path, seconds: float, timeout: float) -> dict:
    from selenium.webdriver.common.by import By

    report: dict = {}
    click_pad(driver, 0.5, 0.5)
    report["pad"] = driver.find_element(By.ID, "pad-readout").text
    duration = driver.find_element(By.ID, "duration")
    duration.clear()
    duration.send_keys(str(int(seconds)))
    started = time.monotonic()
    driver.find_element(By.ID, "generate").click()
    wait_for(driver, "!document.getElementById('clip-result').hidden", timeout, "the clip's result panel")
    wait_for(driver, "document.getElementById('player').readyState >= 2 && document.getElementById('player').duration > 0", timeout, "the audio to load")
    wait_for(driver, "!document.getElementById('player').paused || document.getElementById('player').currentTime > 0", timeout, "the audio to play")
    wait_for(driver, "document.getElementById('mel').complete && document.getElementById('mel').naturalWidth > 0", timeout, "the mel image")
    wait_for(driver, "document.querySelectorAll('#heard-bars .bar').length >= 10", timeout, "the heard-mood bars")
    wait_for(driver, "document.getElementById('narrative').textContent.length > 20", timeout, "the narration")
    report["generate_s"] = round(time.monotonic() - started, 2)
    report["audio_s"] = driver.execute_script("return document.getElementById('player').duration;")
    report["bars"] = driver.execute_script("return document.querySelectorAll('#heard-bars .bar').length;")
    report["narrative"] = driver.find_element(By.ID, "narrative").text
    report["status"] = driver.find_element(By.ID, "status").text
    if abs(report["audio_s"] - seconds) > 0.2:
        raise CheckFailed(f"the page plays {report['audio_s']} s of audio for a {seconds} s clip")
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    driver.execute_script("document.getElementById('player').pause();")
    driver.save_screenshot(str(screenshot))
    report["screenshot"] = str(screenshot)
    return report


def check_analyze(driver, timeout: float, screenshot: Path | None) -> dict:
    """The Analyze tab: upload a file, see the bars and the narration."""
    import numpy as np
    from selenium.webdriver.common.by import By

    from moodmusic.audio import write_wav
    from moodmusic.mel import SAMPLE_RATE

    driver.find_element(By.ID, "tab-analyze").click()
    with tempfile.TemporaryDirectory() as folder:
        upload = Path(folder) / "tone.wav"
        t = np.arange(int(3 * SAMPLE_RATE)) / SAMPLE_RATE
        write_wav(upload, (0.3 * np.sin(2 * np.pi * 262 * t) * (1 + np.sin(2 * np.pi * 2 * t)) / 2).astype(np.float32))
        driver.find_element(By.ID, "upload").send_keys(str(upload))
        driver.find_element(By.ID, "analyze").click()
        wait_for(driver, "!document.getElementById('analyze-result').hidden", timeout, "the analysis")
    wait_for(driver, "document.querySelectorAll('#analyze-bars .bar').length >= 10", timeout, "the analysis bars")
    wait_for(driver, "document.getElementById('analyze-narrative').textContent.length > 20", timeout, "the analysis narration")
    if screenshot:
        driver.save_screenshot(str(screenshot))
    return {"analyze_status": driver.find_element(By.ID, "analyze-status").text}


LIVE = "document.getElementById('live-info').dataset"


def live_info(driver) -> dict:
    return driver.execute_script(f"return Object.assign({{}}, {LIVE});")


def check_live(driver, base_url: str, timeout: float, chunks: int, screenshot: Path | None) -> dict:
    """The Live tab: Start, N chunks arrive and play, a drag on the pad reaches later chunks, pause, resume, Stop."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, "tab-live").click()
    if not driver.execute_script("return document.getElementById('pad-slot-live').contains(document.getElementById('pad'));"):
        raise CheckFailed("the Live tab does not show the pad")
    asked = pad_mood(driver)
    driver.find_element(By.ID, "live-start").click()
    wait_for(driver, f"{LIVE}.state === 'playing'", timeout, "the live stream to start")
    started = time.monotonic()
    wait_for(driver, f"Number({LIVE}.chunks) >= {chunks}", timeout, f"{chunks} live chunks")
    report: dict = {"first_chunks_s": round(time.monotonic() - started, 2)}
    # The AudioContext runs (autoplay allowed) and its clock reaches the chunks: they are heard, not only received.
    wait_for(driver, f"{LIVE}.audio === 'running' && {LIVE}.playingSequence !== undefined", timeout, "the live audio to play")
    before = live_info(driver)
    if abs(float(before["valence"]) - asked[0]) > 1e-3 or abs(float(before["arousal"]) - asked[1]) > 1e-3:
        raise CheckFailed(f"live chunks report mood ({before['valence']}, {before['arousal']}) for a stream started at {asked}")

    # Drag across the pad to a new mood in many quick steps, faster than the page may send mood messages
    # (duration=0: selenium's default glides 250 ms per move).
    pad = driver.find_element(By.ID, "pad")
    path = [(-0.1 - 0.02 * i, -0.3 + 0.04 * i) for i in range(23)]  # ends at (-0.54, +0.58)
    drag = ActionChains(driver, duration=0).move_to_element_with_offset(pad, *pad_offset(pad, *path[0])).click_and_hold()
    for (v0, a0), (v1, a1) in zip(path, path[1:]):
        (x0, y0), (x1, y1) = pad_offset(pad, v0, a0), pad_offset(pad, v1, a1)
        drag = drag.pause(0.02).move_by_offset(x1 - x0, y1 - y0)
    dragged_at = time.monotonic()
    drag.release().perform()
    drag_s = time.monotonic() - dragged_at
    target = pad_mood(driver)
    changed_at_sequence = int(live_info(driver)["sequence"])
    reached = f"Math.abs(Number({LIVE}.valence) - {target[0]}) < 1e-3 && Math.abs(Number({LIVE}.arousal) - {target[1]}) < 1e-3"
    wait_for(driver, f"{reached} && Number({LIVE}.sequence) > {changed_at_sequence}", timeout, f"a live chunk generated for {target}")
    after = live_info(driver)
    report.update({
        "started_at": list(asked), "dragged_to": list(target), "changed_at_sequence": changed_at_sequence,
        "reached_at_sequence": int(after["sequence"]), "reached_after_s": round(time.monotonic() - dragged_at, 2),
        "mood_messages": int(after["moodMessages"]), "drag_s": round(drag_s, 2),
    })  # fmt: skip
    # Throttled to ~10 a second, the last one trailing the drag by up to 0.1 s.
    if not 1 <= report["mood_messages"] <= drag_s / 0.1 + 2:
        raise CheckFailed(f"{report['mood_messages']} mood messages for a {drag_s:.2f} s drag (throttled to ~10 a second)")

    # Pause: the AudioContext stops and the server stops sending (one chunk may be in flight); resume goes on.
    driver.find_element(By.ID, "live-pause").click()
    wait_for(driver, f"{LIVE}.state === 'paused' && {LIVE}.audio === 'suspended'", timeout, "the live stream to pause")
    paused_chunks = int(live_info(driver)["chunks"])
    time.sleep(1.5)
    report["chunks_while_paused"] = int(live_info(driver)["chunks"]) - paused_chunks
    if report["chunks_while_paused"] > 2:  # one being generated when the pause came, one on the wire
        raise CheckFailed(f"{report['chunks_while_paused']} chunks arrived in 1.5 s of pause")
    driver.find_element(By.ID, "live-pause").click()
    wait_for(driver, f"{LIVE}.state === 'playing' && {LIVE}.audio === 'running'", timeout, "the live stream to resume")
    resumed_chunks = int(live_info(driver)["chunks"])
    wait_for(driver, f"Number({LIVE}.chunks) >= {resumed_chunks + 2}", timeout, "live chunks after resuming")
    if screenshot:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(screenshot))
        report["screenshot"] = str(screenshot)

    driver.find_element(By.ID, "live-start").click()  # Stop
    wait_for(driver, f"{LIVE}.state === 'stopped' && {LIVE}.audio === 'closed'", timeout, "the live stream to stop")
    final = live_info(driver)
    report.update({"chunks": int(final["chunks"]), "gaps": int(final["gaps"]), "underruns": int(final["underruns"]),
                   "status": driver.find_element(By.ID, "live-status").text})  # fmt: skip
    if report["gaps"]:
        raise CheckFailed(f"live chunk sequence numbers had {report['gaps']} gaps")
    # The server lets go of the stream (its slot under max_streams) once the page stops it.
    deadline = time.monotonic() + timeout
    while (active := streams_active(base_url)) != 0:
        if time.monotonic() > deadline:
            raise CheckFailed(f"the server still counts {active} live streams after Stop")
        time.sleep(0.1)
    return report


def streams_active(base_url: str) -> float:
    import urllib.request

    with urllib.request.urlopen(base_url + "/metrics", timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith("moodmusic_streams_active"):
                return float(line.split()[-1])
    raise CheckFailed("/metrics has no moodmusic_streams_active")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--screenshot", type=Path, help="PNG of the page after a generation (needed when the generate step runs)")
    parser.add_argument("--analyze-screenshot", type=Path, help="also a PNG of the Analyze tab after an upload")
    parser.add_argument("--live-screenshot", type=Path, help="also a PNG of the Live tab while it streams")
    parser.add_argument("--steps", default=",".join(STEPS), help=f"comma-separated steps to run (default: {','.join(STEPS)})")
    parser.add_argument("--live-chunks", type=int, default=6, help="live chunks to wait for before the drag (default 6)")
    models = parser.add_mutually_exclusive_group()
    models.add_argument("--checkpoints", help="checkpoints folder (default: the shipped one)")
    models.add_argument("--tiny", action="store_true", help="tiny untrained models written to a temporary folder (for CI)")
    parser.add_argument("--seconds", type=float, default=2.0, help="clip duration to generate (default 2)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for each step")
    args = parser.parse_args(argv)
    steps = tuple(step.strip() for step in args.steps.split(",") if step.strip())
    if not steps or set(steps) - set(STEPS):
        parser.error(f"--steps takes some of {', '.join(STEPS)}, got {args.steps!r}")
    if "generate" in steps and not args.screenshot:
        parser.error("--screenshot is required when the generate step runs")

    from moodmusic.server.app import create_app
    from moodmusic.server.background import BackgroundServer
    from moodmusic.server.settings import Settings

    with tempfile.TemporaryDirectory() as scratch:
        checkpoints = args.checkpoints
        if args.tiny:
            sys.path.insert(0, str(REPO / "tests"))
            from conftest import write_tiny_checkpoints  # the one definition of the tiny test models

            checkpoints = str(write_tiny_checkpoints(Path(scratch) / "checkpoints"))
        settings = Settings(checkpoints=checkpoints, store_dir=str(Path(scratch) / "store"), narrator="template")
        try:
            with BackgroundServer(create_app(settings)) as server:
                report = run_check(server.url, args.screenshot, args.seconds, args.timeout, args.analyze_screenshot,
                                   steps, args.live_chunks, args.live_screenshot)  # fmt: skip
        except CheckFailed as failure:
            print(json.dumps({"ok": False, "error": str(failure)}, indent=2))
            return 1
    print(json.dumps({"ok": True, **report}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
