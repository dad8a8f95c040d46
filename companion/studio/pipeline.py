"""``companion voice studio``: media -> segments -> transcripts -> speakers, in a resumable workspace.

Every stage saves the workspace before the next begins, and a run on an existing
workspace picks up where the last one stopped: sources already cut are not decoded
again, transcripts and embeddings already made are kept, and decisions are never
overwritten (``--auto`` fills in only the undecided ones).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

import numpy as np

from companion.errors import UserError
from companion.messages import Float32Array
from companion.studio import media
from companion.studio.embed import Embedder, Embedding, make_embedder
from companion.studio.progress import Progress
from companion.studio.segment import VAD_RATE, SegmentOptions, find_speech, quality_flags
from companion.studio.speakers import Assignment, SpeakerOptions, assign
from companion.studio.store import load_embeddings, save_embeddings
from companion.studio.workspace import RATE, Segment, Workspace
from companion.voice.audio import load_at, resample, write_wav

_log = logging.getLogger(__name__)

DISCARD_FLAGS = frozenset({"overlap", "music", "noise", "clipped", "no_speech"})
AUTO_TARGET_MIN = 0.7
"""--auto marks a segment of the target speaker as target only this close to the --target clips."""


@dataclass(frozen=True)
class StudioOptions:
    ranges: tuple[tuple[float, float], ...] = ()
    targets: tuple[Path, ...] = ()
    auto: bool = False
    embedder: str = "auto"
    isolate: bool = True
    segment: SegmentOptions = SegmentOptions()


def _fingerprint(path: Path, ranges: Sequence[tuple[float, float]]) -> dict[str, object]:
    if not path.is_file():
        raise UserError(f"media file {path} not found")
    return {"path": str(path.resolve()), "size": path.stat().st_size, "ranges": [list(r) for r in ranges]}


def _open(path: Path, sources: Sequence[Path], opts: StudioOptions) -> Workspace:
    wanted = [_fingerprint(s, opts.ranges) for s in sources]
    if not (path / "segments.json").exists():
        if path.exists() and any(path.iterdir()):
            raise UserError(f"{path} exists and is not a studio workspace: choose an empty or new directory")
        return Workspace(path, [{**w, "cut": False} for w in wanted])
    ws = Workspace.open(path)
    had = [{k: v for k, v in s.items() if k != "cut"} for s in ws.sources]
    if had != wanted:
        raise UserError(f"{path} was made from other sources or ranges: use a new -o directory")
    return ws


def _cut(ws: Workspace, index: int, source: Path, opts: StudioOptions, out: TextIO) -> None:
    from companion.studio.isolate import find_isolator

    isolator, message = find_isolator() if opts.isolate else (None, "")
    if message:
        print(message, file=out)
    segments: list[Segment] = []
    for offset, audio in media.decode_all(source, RATE, opts.ranges):
        if isolator is not None:
            audio = isolator(audio, RATE)
        audio16 = resample(audio, RATE, VAD_RATE)
        for start, end in find_speech(audio16, opts.segment):
            seg_id = f"s{index + 1}-{len(segments) + 1:05d}"
            snr, flags = quality_flags(audio16[int(start * VAD_RATE) : int(end * VAD_RATE)], opts.segment)
            seg = Segment(seg_id, str(source), round(offset + start, 3), round(offset + end, 3))
            seg = replace(seg, snr_db=round(snr, 1), flags=tuple(flags))
            write_wav(ws.path / seg.audio_name(), audio[int(start * RATE) : int(end * RATE)], RATE)
            segments.append(seg)
    ws.segments.extend(segments)
    ws.sources[index]["cut"] = True
    ws.save()
    print(f"{source.name}: {len(segments)} speech segments", file=out)


def _transcribe(ws: Workspace) -> None:
    todo = [s for s in ws.segments if s.transcript is None]
    if not todo:
        return
    from companion.config import SttSettings
    from companion.studio.transcribe import load_model, transcribe_all

    settings = SttSettings()
    model = load_model(settings)
    progress = Progress("transcribing", len(todo))
    batch = 200  # saved after each batch: a stopped run resumes from there
    for first in range(0, len(todo), batch):
        part = todo[first : first + batch]
        clips = [load_at(ws.path / s.audio_name(), VAD_RATE) for s in part]

        def report(n: int, k: int = first) -> None:
            progress.update(k + n, f"{k + n}/{len(todo)} segments")

        texts = transcribe_all(model, clips, settings, report)
        for seg, text in zip(part, texts, strict=True):
            flags = seg.flags if text else (*seg.flags, "no_speech")
            ws.segments[ws.segments.index(seg)] = replace(seg, transcript=text, flags=flags)
        ws.save()


def _embed(ws: Workspace, embedder: Embedder) -> dict[str, Embedding]:
    cache_file = ws.path / "embeddings.npz"
    done = load_embeddings(cache_file, embedder.name)
    todo = [s for s in ws.segments if s.id not in done]
    progress = Progress(f"speaker embeddings ({embedder.name})", len(todo))
    for n, seg in enumerate(todo, 1):
        done[seg.id] = embedder.embed(load_at(ws.path / seg.audio_name(), VAD_RATE))
        progress.update(n, f"{n}/{len(todo)} segments")
        if n % 100 == 0:
            save_embeddings(cache_file, embedder.name, done)
    if todo:
        save_embeddings(cache_file, embedder.name, done)
    return done


def _target(embedder: Embedder, clips: Sequence[Path]) -> Float32Array | None:
    if not clips:
        return None
    vectors = [embedder.embed(media.decode(clip, VAD_RATE)).whole for clip in clips]
    mean = np.mean(vectors, axis=0)
    return np.asarray(mean / np.linalg.norm(mean), dtype=np.float32)


def predicted_decision(seg: Segment, target_min: float) -> str:
    if DISCARD_FLAGS.intersection(seg.flags):
        return "discard"
    if seg.speaker == "target":
        return "target" if seg.score >= target_min else "undecided"  # the speaker's edge: for a person
    return "other"


def run_studio(sources: Sequence[Path], path: Path, opts: StudioOptions, out: TextIO | None = None) -> Workspace:
    out = out if out is not None else sys.stderr
    if not sources:
        raise UserError("voice studio: give at least one media file")
    for clip in opts.targets:
        if not clip.is_file():
            raise UserError(f"--target clip {clip} not found")
    ws = _open(path, sources, opts)
    for index, source in enumerate(sources):
        if not ws.sources[index].get("cut"):
            _cut(ws, index, source, opts, out)
    if not ws.segments:
        raise UserError(f"no speech found in {', '.join(map(str, sources))}")
    _transcribe(ws)
    embedder = make_embedder(opts.embedder)
    target = _target(embedder, opts.targets)
    embeddings = _embed(ws, embedder)
    centre = None
    if embedder.centred:
        centre = np.mean([embeddings[s.id].whole for s in ws.segments], axis=0).astype(np.float32)
    speaker_opts = SpeakerOptions(same_speaker=embedder.same_speaker)
    result = _assign(ws, embeddings, speaker_opts, target, centre)
    if _split(ws, embedder, result, centre, opts):
        _transcribe(ws)
        embeddings = _embed(ws, embedder)
        result = _assign(ws, embeddings, speaker_opts, target, centre)
    for i, seg in enumerate(ws.segments):
        flags = seg.flags + (("overlap",) if result.overlap[i] and "overlap" not in seg.flags else ())
        new = replace(seg, speaker=result.labels[i], score=round(result.scores[i], 3), flags=flags)
        if opts.auto and new.decision == "undecided":
            new = replace(new, decision=predicted_decision(new, AUTO_TARGET_MIN))
        ws.segments[i] = new
    ws.targets = [str(t.resolve()) for t in opts.targets]
    ws.embedder = embedder.name
    ws.save()
    _summary(ws, out)
    return ws


def _assign(
    ws: Workspace,
    embeddings: dict[str, Embedding],
    opts: SpeakerOptions,
    target: Float32Array | None,
    centre: Float32Array | None,
) -> Assignment:
    return assign(
        [embeddings[s.id] for s in ws.segments],
        [s.duration_s for s in ws.segments],
        opts,
        target=target,
        centre=centre,
        reliable=["short" not in s.flags and "no_speech" not in s.flags for s in ws.segments],
    )


def _split(
    ws: Workspace, embedder: Embedder, result: Assignment, centre: Float32Array | None, opts: StudioOptions
) -> int:
    """Cut segments holding two speakers into turns (once: pieces are never cut again)."""
    from companion.studio.turns import split_turns

    cents = np.stack(list(result.centroids.values()))
    kept: list[Segment] = []
    count = 0
    for i, seg in enumerate(ws.segments):
        if not result.overlap[i] or "." in seg.id:
            kept.append(seg)
            continue
        audio = load_at(ws.path / seg.audio_name(), RATE)
        audio16 = resample(audio, RATE, VAD_RATE)
        pieces = split_turns(audio16, embedder, cents, centre)
        if len(pieces) == 1:
            kept.append(seg)
            continue
        for k, piece in enumerate(pieces, 1):
            snr, flags = quality_flags(
                audio16[int(piece.start_s * VAD_RATE) : int(piece.end_s * VAD_RATE)], opts.segment
            )
            start, end = round(seg.start_s + piece.start_s, 3), round(seg.start_s + piece.end_s, 3)
            new = Segment(f"{seg.id}.{k}", seg.source, start, end, snr_db=round(snr, 1))
            new = replace(new, flags=(*flags, "overlap") if piece.zone else tuple(flags))
            write_wav(ws.path / new.audio_name(), audio[int(piece.start_s * RATE) : int(piece.end_s * RATE)], RATE)
            kept.append(new)
        count += 1
    if count:
        ws.segments = kept
        ws.save()
        _log.info("split %d segments holding two speakers", count)
    return count


def _summary(ws: Workspace, out: TextIO) -> None:
    by: dict[str, list[Segment]] = {}
    for seg in ws.segments:
        by.setdefault(seg.speaker or "?", []).append(seg)
    for name, segs in sorted(by.items()):
        flagged = sum(1 for s in segs if DISCARD_FLAGS.intersection(s.flags))
        print(f"{name}: {len(segs)} segments, {sum(s.duration_s for s in segs):.1f} s ({flagged} flagged)", file=out)
    print(f"workspace {ws.path}: review with `companion voice review {ws.path}`", file=out)
