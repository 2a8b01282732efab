"""End-to-end check of the web page in headless Chromium (Debian's `chromium` + `chromium-driver`, selenium).

Starts the server on loopback, opens `/`, picks a mood on the pad, clicks Generate, and waits until the
clip plays, its mel image shows, the heard mood is drawn as bars and the narration is written; then
uploads a file in the Analyze tab. Saves a screenshot of the page after the generation.

    .venv/bin/python scripts/webpage_check.py --screenshot docs/webpage.png                 # shipped checkpoints
    .venv/bin/python scripts/webpage_check.py --tiny --screenshot /tmp/page.png             # tiny untrained models (CI)

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
    status = driver.execute_script("return document.getElementById('status').textContent + ' | ' + document.getElementById('analyze-status').textContent;")
    raise CheckFailed(f"timed out after {timeout:g} s waiting for {what} (page status: {status!r})")


def run_check(base_url: str, screenshot: Path, seconds: float, timeout: float, analyze_screenshot: Path | None = None) -> dict:
    import numpy as np
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    from moodmusic.audio import write_wav
    from moodmusic.mel import SAMPLE_RATE

    report: dict = {}
    driver = open_browser()
    try:
        driver.get(base_url + "/")
        wait_for(driver, "document.getElementById('pad-readout').textContent.includes('near')", timeout, "the named moods on the pad")
        pad = driver.find_element(By.ID, "pad")
        # Click at (valence 0.5, arousal 0.5) of the pad: offsets are from the element's centre.
        ActionChains(driver).move_to_element_with_offset(pad, int(pad.size["width"] * 0.22), -int(pad.size["height"] * 0.22)).click().perform()
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

        # The Analyze tab: upload a file, see the bars and the narration.
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
        report["analyze_status"] = driver.find_element(By.ID, "analyze-status").text
        if analyze_screenshot:
            driver.save_screenshot(str(analyze_screenshot))
        errors = [entry["message"] for entry in driver.get_log("browser")]
        if errors:
            raise CheckFailed(f"the page logged errors: {errors}")
        report["screenshot"] = str(screenshot)
        return report
    finally:
        driver.quit()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--screenshot", type=Path, required=True, help="PNG of the page after a generation")
    parser.add_argument("--analyze-screenshot", type=Path, help="also a PNG of the Analyze tab after an upload")
    models = parser.add_mutually_exclusive_group()
    models.add_argument("--checkpoints", help="checkpoints folder (default: the shipped one)")
    models.add_argument("--tiny", action="store_true", help="tiny untrained models written to a temporary folder (for CI)")
    parser.add_argument("--seconds", type=float, default=2.0, help="clip duration to generate (default 2)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for each step")
    args = parser.parse_args(argv)

    from server.app import create_app
    from server.background import BackgroundServer
    from server.settings import Settings

    with tempfile.TemporaryDirectory() as scratch:
        checkpoints = args.checkpoints
        if args.tiny:
            sys.path.insert(0, str(REPO / "tests"))
            from conftest import write_tiny_checkpoints  # the one definition of the tiny test models

            checkpoints = str(write_tiny_checkpoints(Path(scratch) / "checkpoints"))
        settings = Settings(checkpoints=checkpoints, store_dir=str(Path(scratch) / "store"), narrator="template")
        try:
            with BackgroundServer(create_app(settings)) as server:
                report = run_check(server.url, args.screenshot, args.seconds, args.timeout, args.analyze_screenshot)
        except CheckFailed as failure:
            print(json.dumps({"ok": False, "error": str(failure)}, indent=2))
            return 1
    print(json.dumps({"ok": True, **report}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
