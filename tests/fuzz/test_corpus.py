"""Replays tests/fuzz/corpus/ (written by make_corpus.py): every nasty case found so far.

HTTP requests go to the real control API server; persona and config files to the
real loaders; WAV files to the real reader. Each gets a 4xx or a one-line error
within 2 s and 200 MB of extra RSS.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fuzzkit import CORPUS, Meter, one_line
from test_control_api_fuzz import check_answer, exchange, server  # noqa: F401 (the fixture)

from companion.audio.io import read_audio
from companion.config import Config
from companion.errors import AudioFileError
from companion.persona import load_persona_file
from companion.settings import ConfigError, build, read_yaml


def cases(kind: str) -> list[Path]:
    return sorted((CORPUS / kind).iterdir())


def test_the_corpus_is_there():
    assert {p.name for p in CORPUS.iterdir()} >= {"http", "persona", "config", "wav"}
    assert all(len(cases(kind)) >= 7 for kind in ("http", "persona", "config", "wav"))


@pytest.mark.parametrize("path", cases("http"), ids=lambda p: p.stem)
def test_http_case(server, meter: Meter, error_log, path: Path):  # noqa: F811
    request = path.read_bytes()
    with meter.measure(path.name):
        answer = exchange(server.settings.port, request)
    status = check_answer(answer, request.split(b" ", 1)[0].decode("latin-1"))
    expected = 200 if path.stem == "http-0.9" else 400  # HTTP/0.9 'GET /health' is a fine request
    assert expected <= status < max(expected + 100, 500), f"{path.name}: {answer[:300]!r}"
    body = answer.partition(b"\r\n\r\n")[2]
    if body and status >= 400:
        error = json.loads(body)["error"]
        assert "/etc" not in error and "personas/" not in error and "Errno" not in error, error


@pytest.mark.parametrize("path", cases("persona"), ids=lambda p: p.stem)
def test_persona_case(meter: Meter, path: Path):
    with meter.measure(path.name), pytest.raises(ConfigError) as err:
        load_persona_file(path, path.parent)
    one_line(str(err.value))
    assert str(err.value).startswith(f"{path}: ")


@pytest.mark.parametrize("path", cases("config"), ids=lambda p: p.stem)
def test_config_case(meter: Meter, path: Path):
    with meter.measure(path.name), pytest.raises(ConfigError) as err:
        build(Config, read_yaml(path), source=str(path))
    one_line(str(err.value))


@pytest.mark.parametrize("path", cases("wav"), ids=lambda p: p.stem)
def test_wav_case(meter: Meter, path: Path):
    with meter.measure(path.name):
        try:
            samples, rate = read_audio(path)
        except AudioFileError as exc:
            one_line(str(exc))
            assert str(exc).startswith(f"{path}: ")
            return
    assert path.stem in ("single-sample", "extensible-garbage", "riff-size-0", "data-size-4g"), (path, rate)
    assert len(samples) >= 1
