"""The review page in a real headless browser (Playwright driving Debian's chromium)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
pytest.importorskip("av", reason="the voice studio needs PyAV")
playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright (dev extra)")
if not Path(CHROMIUM).exists() or shutil.which("flite") is None:
    pytest.skip("needs chromium and flite (scripts/system-deps.sh test)", allow_module_level=True)

from studio_film import studio_run  # noqa: E402

pytestmark = pytest.mark.slow
SCREENSHOT = os.environ.get("COMPANION_REVIEW_SCREENSHOT")
"""Where to save a screenshot of the page (docs/voice-review.png is made this way)."""


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("resemblyzer", reason="speaker embeddings need resemblyzer and torch")
    run = studio_run(tmp_path_factory)
    copy = tmp_path_factory.mktemp("review") / "ws"
    shutil.copytree(run.workspace, copy)
    return copy


@pytest.fixture()
def server(workspace: Path):
    """``companion voice review`` as a user starts it; yields the page address."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "companion", "voice", "review", str(workspace), "--no-browser"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.startswith("review page: http://127.0.0.1:"), line
        yield line.split()[2]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def saved(workspace: Path) -> dict[str, dict]:
    return {s["id"]: s for s in json.loads((workspace / "segments.json").read_text())["segments"]}


@pytest.fixture()
def page():
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield browser.new_page(viewport={"width": 1280, "height": 900})
        browser.close()


def test_keys_mark_segments_and_every_decision_is_saved_at_once(server: str, page, workspace: Path):
    page.goto(server)
    page.wait_for_selector(".seg.current")
    headings = page.locator("h2").all_inner_texts()
    assert headings[0].startswith("target speaker") and len(headings) >= 3
    first = page.locator(".seg").nth(0).get_attribute("data-id")
    second = page.locator(".seg").nth(1).get_attribute("data-id")

    page.keyboard.press("d")
    page.wait_for_selector(f'.seg[data-id="{first}"][data-decision="discard"]')
    assert saved(workspace)[first]["decision"] == "discard"

    page.keyboard.press("ArrowDown")
    assert page.locator(".seg.current").get_attribute("data-id") == second
    page.keyboard.press("o")
    page.wait_for_selector(f'.seg[data-id="{second}"][data-decision="other"]')
    page.keyboard.press("ArrowUp")
    page.keyboard.press("t")
    page.wait_for_selector(f'.seg[data-id="{first}"][data-decision="target"]')
    assert (saved(workspace)[first]["decision"], saved(workspace)[second]["decision"]) == ("target", "other")
    page.keyboard.press("Space")  # plays the segment (headless chromium has a fake audio output)
    page.wait_for_function("audio.dataset.id && audio.currentTime > 0.05", timeout=10000)
    assert page.evaluate("audio.dataset.id") == first


def test_dragging_the_waveform_edge_trims_the_segment(server: str, page, workspace: Path):
    page.goto(server)
    page.wait_for_selector(".seg.current")
    seg = page.locator(".seg").nth(2)
    seg_id = seg.get_attribute("data-id")
    box = seg.locator("canvas").bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + 2, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.25, y, steps=5)
    page.mouse.up()
    page.wait_for_function(f"document.querySelector('#status').textContent === 'saved {seg_id}'")
    record = saved(workspace)[seg_id]
    duration = record["end_s"] - record["start_s"]
    assert record["trim_start_s"] == pytest.approx(0.25 * duration, abs=0.05 * duration)
    assert record["trim_end_s"] == 0.0


def test_filters_hide_flagged_segments_and_low_scores(server: str, page, workspace: Path):
    page.goto(server)
    page.wait_for_selector(".seg.current")
    total = page.locator(".seg").count()
    overlapped = sum("overlap" in s["flags"] for s in saved(workspace).values())
    assert overlapped > 0
    page.uncheck('input[data-flag="overlap"]')
    assert page.locator(".seg").count() <= total - overlapped + sum(
        len(s["flags"]) > 1 and "overlap" in s["flags"] for s in saved(workspace).values()
    )
    page.check('input[data-flag="overlap"]')
    page.fill("#minscore", "0.75")
    page.dispatch_event("#minscore", "input")
    scores = [float(t.split("score ")[1].split()[0]) for t in page.locator(".meta").all_inner_texts()]
    assert scores and min(scores) >= 0.75 and len(scores) < total
    if SCREENSHOT:
        page.fill("#minscore", "-1")
        page.dispatch_event("#minscore", "input")
        page.locator(".seg").nth(1).click()
        page.screenshot(path=SCREENSHOT, full_page=False)


def test_requests_without_the_token_are_refused(server: str, workspace: Path):
    base = server.rsplit("/", 2)[0]
    for url in (f"{base}/", f"{base}/wrong-token/api/segments"):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(url, timeout=5)
        assert err.value.code == 403
    bad = urllib.request.Request(
        server + "api/decision", data=json.dumps({"id": "nope", "decision": "target"}).encode(), method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(bad, timeout=5)
    assert err.value.code == 404
