"""Write tests/fuzz/corpus/: the nasty inputs of issue 15 and those the fuzzers found.

Run ``python tests/fuzz/make_corpus.py`` after adding a case; ``test_corpus.py``
replays every file. Each file's first line (or name) says what it is.
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fuzzkit import CORPUS, wav_bytes


def request(method: str, path: str, body: bytes | None = None, length: int | None = None) -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: x\r\n"
    if body is not None:
        head += f"Content-Length: {len(body) if length is None else length}\r\n"
    return (head + "\r\n").encode("latin-1") + (body or b"")


def say(**fields: object) -> bytes:
    return request("POST", "/say", json.dumps(fields).encode())


HTTP = {
    "persona-traversal-say": say(text="hi", persona="../../../../etc/passwd"),
    "persona-absolute-say": say(text="hi", persona="/etc/hostname"),
    "persona-traversal-use": request("POST", "/persona", b'{"name": "../../x"}'),
    "persona-300-chars": request("POST", "/persona", json.dumps({"name": "p" * 300}).encode()),
    "persona-lone-surrogate": request("POST", "/persona", b'{"name": "\\ud800"}'),
    "say-nul": say(text="hello\x00world"),
    "say-lone-surrogates": request("POST", "/say", b'{"text": "a\\ud800b\\udc80"}'),
    "say-3000-cjk": say(text="\u4e2d\u6587" * 1500),
    "say-100k-chars": say(text="word " * 20000),
    "json-2000-deep": request("POST", "/say", b"[" * 2000 + b"]" * 2000),
    "json-2000-deep-object": request("POST", "/say", b'{"a":' * 2000 + b"1" + b"}" * 2000),
    "body-shorter-than-length": request("POST", "/say", b'{"text":', length=100),
    "content-length-negative": request("POST", "/say", b"{}", length=-1),
    "content-length-huge": request("POST", "/say", b"{}", length=10**18),
    "head": request("HEAD", "/health"),
    "options": request("OPTIONS", "/say"),
    "unknown-method": request("BREW", "/say"),
    "garbage-line": b"\x00\xff\xfe GET\r\n\r\n",
    "http-0.9": b"GET /health\r\n",
    "long-path": request("GET", "/" + "a" * 60000),
    "many-headers": b"GET /health HTTP/1.1\r\n" + b"X: y\r\n" * 150 + b"\r\n",
}

BOMB = (
    "a0: &a0 ["
    + ", ".join(['"lol"'] * 9)
    + "]\n"
    + "".join(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]\n" for i in range(1, 9))
)
PERSONA = "name: P\nsystem_prompt: You are a test.\n"
PERSONAS = {
    "bomb-description": PERSONA + BOMB + "description: *a8\n",
    "bomb-style-words": PERSONA + BOMB + "style:\n  words: *a8\n",
    "deep-2000": PERSONA + "examples: " + "[" * 2000 + "]" * 2000 + "\n",
    "deep-900-mappings": PERSONA + "style: " + "{a: " * 900 + "1" + "}" * 900 + "\n",
    "self-alias": PERSONA + "wake_phrases: &w [*w]\n",
    "regex-catastrophic": PERSONA + "style:\n  phrases:\n    - {regex: '(a+)+$', replace: x}\n",
    "regex-alternation": PERSONA + "style:\n  phrases:\n    - {regex: '^(a|aa)+$'}\n",
    "regex-counted-repeats": PERSONA + "style:\n  phrases:\n    - {regex: '((a{1000}){1000}){1000}'}\n",
    "extends-traversal": PERSONA + "extends: ../../etc/passwd\n",
    "extends-self-absolute": PERSONA + "extends: /tmp/x\n",
    "huge-value": PERSONA + "greeting: [" + ", ".join(['"' + "x" * 1000 + '"'] * 60) + "]\n",
    "nul-in-name": 'name: "P\\0"\nsystem_prompt: s\n',
    "python-tag": PERSONA + "description: !!python/object/apply:os.system ['true']\n",
}
CONFIGS = {
    "bomb-log-level": BOMB + "log_level: *a8\n",
    "deep-nesting": "audio: " + "[" * 2000 + "]" * 2000 + "\n",
    "token-one-char": "control:\n  token: t\n",
    "token-non-ascii": "control:\n  token: пароль-пароль-пароль\n",
    "max-connections-zero": "control:\n  max_connections: 0\n",
    "port-huge": "control:\n  port: 99999999999999999999999\n",
    "unknown-key-huge": "k" * 100_000 + ": 1\n",
}


def wav_files() -> dict[str, bytes]:
    nan = np.zeros(1600, dtype="<f4")
    nan[10:20] = np.nan
    out = {
        "rate-1hz": wav_bytes(rate=1, data=b"\1\0" * 1000),
        "rate-4294967295": wav_bytes(rate=2**32 - 1),
        "rate-0": wav_bytes(rate=0),
        "channels-65535": wav_bytes(channels=65535, data=b"\0" * 4000),
        "channels-0": wav_bytes(channels=0),
        "data-size-4g": wav_bytes(data_size=2**32 - 1),
        "riff-size-0": wav_bytes(riff_size=0),
        "bits-0": wav_bytes(bits=0),
        "nan-float": wav_bytes(tag=3, bits=32, data=nan.tobytes()),
        "single-sample": wav_bytes(data=b"\1\0"),
        "no-samples": wav_bytes(data=b""),
        "truncated-header": wav_bytes()[:30],
        "extensible-garbage": wav_bytes(tag=0xFFFE, extra=b"\xff" * 24),
    }
    out["fmt-chunk-huge"] = out["rate-1hz"][:16] + struct.pack("<I", 2**32 - 1) + out["rate-1hz"][20:]
    return out


def main() -> None:
    for kind, files, ext in (("http", HTTP, "http"), ("persona", PERSONAS, "yaml"), ("config", CONFIGS, "yaml")):
        (CORPUS / kind).mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            path = CORPUS / kind / f"{name}.{ext}"
            path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    (CORPUS / "wav").mkdir(parents=True, exist_ok=True)
    for name, data in wav_files().items():
        (CORPUS / "wav" / f"{name}.wav").write_bytes(data)
    print(f"wrote {sum(1 for _ in CORPUS.rglob('*.*'))} files under {CORPUS}")


if __name__ == "__main__":
    main()
