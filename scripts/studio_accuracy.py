#!/usr/bin/env python3
"""Measure the voice studio's speaker separation on synthetic films, per speaker embedding.

Builds the test suite's synthetic film (tests/studio_film.py: three flite voices in turns,
overlaps, a music bed, a music cue and a noise burst; MKV with AC3) for each seed, runs
``companion voice studio --auto`` with each embedding, and prints, before any human review:
purity and recall of the segments marked target, and the overlap detection rate.

    .venv/bin/python scripts/studio_accuracy.py [--seeds 3 5] [--embeddings resemblyzer mfcc]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from studio_film import make_film, make_target_clips, measure

from companion.cli import main as companion
from companion.studio.workspace import Workspace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[3, 5])
    parser.add_argument("--embeddings", nargs="+", default=["resemblyzer", "mfcc"])
    args = parser.parse_args()
    print(f"{'seed':>4} {'embedding':<12} {'purity':>7} {'recall':>7} {'overlap':>8} {'target s':>9} {'time s':>7}")
    with tempfile.TemporaryDirectory(prefix="studio-acc-") as tmp:
        for seed in args.seeds:
            folder = Path(tmp) / f"seed{seed}"
            folder.mkdir()
            film = make_film(folder / "film.mkv", seed=seed)
            targets = make_target_clips(folder)
            for name in args.embeddings:
                ws = folder / f"ws-{name}"
                cmd = ["voice", "studio", str(film.path), "-o", str(ws), "--auto", "--embedding", name]
                for clip in targets:
                    cmd += ["--target", str(clip)]
                began = time.perf_counter()
                with contextlib.redirect_stderr(io.StringIO()):
                    companion(cmd)
                took = time.perf_counter() - began
                acc = measure(Workspace.open(ws).segments, film)
                print(
                    f"{seed:>4} {name:<12} {acc.purity:7.3f} {acc.recall:7.3f} {acc.overlap_rate:8.2f} "
                    f"{acc.target_s:9.1f} {took:7.1f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
