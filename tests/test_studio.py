"""The voice studio on a synthetic film: speakers found, overlaps and music flagged, export usable."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("av", reason="the voice studio needs PyAV")
if shutil.which("flite") is None:
    pytest.skip("flite is missing (scripts/system-deps.sh test)", allow_module_level=True)

from studio_film import RATE, measure, studio_run, write_media

from companion.cli import main
from companion.studio.workspace import Workspace

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("resemblyzer", reason="speaker embeddings need resemblyzer and torch")
    return studio_run(tmp_path_factory)


def test_decodes_the_ac3_track_of_an_mkv_and_the_aac_of_an_mp4(tmp_path: Path):
    from companion.studio.media import decode

    t = np.arange(12 * RATE) / RATE
    tone = (0.3 * np.sin(2 * np.pi * np.where(t < 8.0, 440, 660) * t)).astype(np.float32)
    for name in ("clip.mkv", "clip.mp4"):
        write_media(tmp_path / name, tone, RATE, video=name.endswith(".mkv"))
        for span, pitch in (((1.0, 2.0), 440), ((8.5, 9.5), 660)):
            audio = decode(tmp_path / name, 16000, span)
            assert audio.size == pytest.approx(16000, abs=400)
            spectrum = np.abs(np.fft.rfft(audio))
            assert np.argmax(spectrum) * 16000 / audio.size == pytest.approx(pitch, abs=5)


def test_auto_decisions_are_pure_and_recover_most_of_the_target(run):
    acc = measure(Workspace.open(run.workspace).segments, run.film)
    print(f"\ntarget purity {acc.purity:.3f}, recall {acc.recall:.3f}, overlap detection {acc.overlap_rate:.2f}")
    assert acc.purity >= 0.95
    assert acc.recall >= 0.80
    assert acc.overlap_rate >= 2 / 3


def test_music_noise_and_silence_under_speech_are_flagged(run):
    segs = Workspace.open(run.workspace).segments

    def flags_at(t: float) -> set[str]:
        return {f for s in segs if s.start_s <= t <= s.end_s for f in s.flags}

    ((cue_start, cue_end),) = run.film.music_only
    assert flags_at((cue_start + cue_end) / 2) & {"music", "no_speech"}
    loud_music, burst = run.film.loud_beds
    assert "music" in flags_at((loud_music[0] + loud_music[1]) / 2)
    assert "noise" in flags_at((burst[0] + burst[1]) / 2)


def test_workspace_records_every_field_and_a_progress_line(run):
    data = json.loads((run.workspace / "segments.json").read_text())
    seg = data["segments"][0]
    for key in ("id", "source", "start_s", "end_s", "transcript", "speaker", "score", "flags", "decision"):
        assert key in seg
    assert all((run.workspace / f"audio/{s['id']}.wav").is_file() for s in data["segments"])
    assert "decoding film.mkv: 100%" in run.output
    assert any(s["speaker"] == "target" and "friend" in s["transcript"].lower() for s in data["segments"])


def test_a_second_run_resumes_and_keeps_human_decisions(run, tmp_path: Path, capsys):
    ws_copy = tmp_path / "ws"
    shutil.copytree(run.workspace, ws_copy)
    ws = Workspace.open(ws_copy)
    first = ws.segments[0]
    ws.update(first.id, decision="discard", trim_start_s=0.2)
    args = ["voice", "studio", str(run.film.path), "-o", str(ws_copy), "--auto"]
    for clip in run.targets:
        args += ["--target", str(clip)]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "decoding" not in err and "transcribing" not in err  # nothing cut or transcribed again
    again = Workspace.open(ws_copy).segment(first.id)
    assert (again.decision, again.trim_start_s) == ("discard", 0.2)


def test_a_workspace_of_other_sources_is_refused(run, tmp_path: Path, capsys):
    other = tmp_path / "other.mkv"
    shutil.copy(run.film.path, other)
    ws_copy = tmp_path / "ws"
    shutil.copytree(run.workspace, ws_copy)
    assert main(["voice", "studio", str(other), "-o", str(ws_copy)]) == 1
    assert "was made from other sources" in capsys.readouterr().err


def test_bad_range_and_missing_media_are_one_line_errors(tmp_path: Path, capsys):
    assert main(["voice", "studio", str(tmp_path / "x.mkv"), "-o", str(tmp_path / "ws"), "--range", "1:00-0:30"]) == 1
    assert "--range '1:00-0:30': the end must come after the start" in capsys.readouterr().err
    assert main(["voice", "studio", str(tmp_path / "x.mkv"), "-o", str(tmp_path / "ws")]) == 1
    assert "x.mkv not found" in capsys.readouterr().err


def test_export_writes_reference_dataset_and_a_persona_that_speaks(run, tmp_path: Path, capsys, isolated_home):
    import soundfile

    out = tmp_path / "export"
    assert main(["voice", "export", str(run.workspace), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    info = soundfile.info(str(out / "reference.wav"))
    assert 10.0 <= info.duration <= 60.0 + 0.3 * 20
    rows = list(csv.reader((out / "dataset/metadata.csv").open(), delimiter="|"))
    assert rows and all(len(r) == 3 and r[1] for r in rows)
    assert {f"{r[0]}.wav" for r in rows} == {p.name for p in (out / "dataset/wavs").iterdir()}
    assert f"match: {out / 'reference.wav'}" in printed

    personas = tmp_path / "personas"
    personas.mkdir()
    snippet = (out / "voice.yaml").read_text()
    (personas / "film.yaml").write_text(
        "name: Film\ndescription: the character from the film\nsystem_prompt: You are a robot.\n" + snippet
    )
    config = tmp_path / "config.yaml"
    config.write_text(f"personas_dir: {personas}\nstate_dir: {tmp_path / 'state'}\n", encoding="utf-8")
    wav = tmp_path / "out.wav"
    assert (
        main(["say", "--config", str(config), "--persona", "film", "--no-daemon", "-o", str(wav), "Hello friend."]) == 0
    )
    audio, rate = soundfile.read(str(wav))
    assert audio.size / rate > 0.5 and np.abs(audio).max() > 0.05


def test_export_without_target_decisions_is_refused(run, tmp_path: Path, capsys):
    ws_copy = tmp_path / "ws"
    shutil.copytree(run.workspace, ws_copy)
    ws = Workspace.open(ws_copy)
    for seg in ws.segments:
        ws.update(seg.id, decision="other")
    assert main(["voice", "export", str(ws_copy)]) == 1
    assert "no segments marked target" in capsys.readouterr().err
