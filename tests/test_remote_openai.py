"""The LLM over the OpenAI-compatible chat API, against llama-cpp-python's own server.

``python -m llama_cpp.server`` runs the bundled SmolLM2 on a free loopback port, with an
API key, once for this module. The local fallback is the same model, in-process.
"""

from __future__ import annotations

import logging
import time

import pytest

from companion.config import LlmSettings
from companion.llm import LlamaChat
from companion.messages import PersonaPrompt
from companion.remote import peers
from companion.remote.fallback import FallbackChat
from companion.remote.health import RemoteError
from companion.remote.openai_chat import OpenAIChat
from companion.sentences import split_sentences

pytestmark = pytest.mark.slow

KEY = "test-key-5f1e9a0c2b7d"
PROMPT = PersonaPrompt(
    "You are Pip, a small friendly robot. Answer in one or two short sentences.",
    (("What are you?", "I am Pip, a little robot."),),
)


@pytest.fixture(scope="module")
def server():
    peer = peers.llama_server(api_key=KEY, threads=1)  # 1 thread: the test machine's cores are shared
    yield peer
    peer.stop()


@pytest.fixture()
def settings(server, monkeypatch) -> LlmSettings:
    monkeypatch.setenv("COMPANION_TEST_KEY", KEY)
    return LlmSettings(
        engine="openai",
        url=server.address,
        remote_model="smollm2",
        api_key_env="COMPANION_TEST_KEY",
        temperature=0.0,
        memory_tokens=120,
        context_tokens=512,
        max_reply_tokens=48,
        deadline_s=30.0,
    )


@pytest.fixture(scope="module")
def local():
    chat = LlamaChat(LlmSettings(temperature=0.0, memory_tokens=120, context_tokens=512, max_reply_tokens=48), PROMPT)
    chat.warm()
    return chat


def test_a_reply_streams_in_pieces_in_character(settings):
    chat = OpenAIChat(settings, PROMPT)
    pieces = list(chat.reply("Hello! Who are you?"))
    assert len(pieces) > 3
    assert split_sentences("".join(pieces))
    assert chat.chat_memory.turns == [("Hello! Who are you?", "".join(pieces).strip())]


def test_the_remote_keeps_the_same_memory_budget_as_the_local_model(settings, local):
    from dataclasses import replace

    local.reset()
    chat = OpenAIChat(
        replace(settings, max_reply_tokens=24), PROMPT, memory=local.chat_memory, render=local.prompt_tokens
    )
    for i in range(5):
        list(chat.reply(f"This is message number {i}. Please remember the word banana{i}."))
    assert local._history_tokens(local.memory) <= settings.memory_tokens
    assert 0 < len(local.memory) < 5 and "banana4" in local.memory[-1][0]


def test_a_turn_on_the_local_fallback_knows_what_the_remote_said(settings, local):
    local.reset()
    remote = OpenAIChat(settings, PROMPT, memory=local.chat_memory, render=local.prompt_tokens)
    chat = FallbackChat(remote, local)
    list(chat.reply("My name is Ada."))
    remote.url = remote.url  # same server; now make it unreachable for the next turn
    remote._port = peers.free_port()
    reply = "".join(chat.reply("What is my name?"))
    assert reply and chat.health.state == "down" and chat.health.fallbacks == 1
    assert [u for u, _ in local.memory] == ["My name is Ada.", "What is my name?"]


def test_a_wrong_api_key_is_an_error_that_never_shows_the_key(settings, monkeypatch, caplog):
    wrong = "wrong-key-0123456789abcdef"
    monkeypatch.setenv("COMPANION_TEST_KEY", wrong)
    chat = OpenAIChat(settings, PROMPT)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(RemoteError, match="401") as err:
        list(chat.reply("Hello"))
    for text in (str(err.value), repr(chat), caplog.text):
        assert wrong not in text and KEY not in text


def test_the_key_can_come_from_a_file(settings, tmp_path, monkeypatch):
    from dataclasses import replace

    monkeypatch.delenv("COMPANION_TEST_KEY")
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    chat = OpenAIChat(replace(settings, api_key_file=key_file), PROMPT)
    assert chat.probe() > 0
    assert "".join(chat.reply("Hi!"))


def test_a_server_killed_mid_reply_cuts_that_reply_and_the_next_turn_is_local(settings, local):
    from dataclasses import replace

    local.reset()
    victim = peers.llama_server(api_key=KEY)
    try:
        s = replace(settings, url=victim.address, max_reply_tokens=200, deadline_s=10.0)
        chat = FallbackChat(OpenAIChat(s, PROMPT, memory=local.chat_memory, render=local.prompt_tokens), local)
        assert "".join(chat.reply("Hi."))  # a cold server's first reply is slow: warm it
        assert chat.health.state == "ok"
        stream = chat.reply("Tell me a long story about a brave little robot and its friends.")
        assert next(stream)
        victim.kill()  # SIGKILL, mid-reply
        t = time.perf_counter()
        rest = list(stream)  # ends: what was said stays said
        assert time.perf_counter() - t < s.deadline_s + 5.0
        assert chat.health.state == "down", rest
        assert "".join(chat.reply("Are you still there?"))  # the local model answers
        assert chat.health.fallbacks == 1
    finally:
        victim.stop()


def test_a_server_that_never_answers_hands_the_turn_to_the_local_model(settings, local):
    import socket
    from dataclasses import replace

    with socket.create_server(("127.0.0.1", 0)) as hung:  # listens, never accepts or answers
        s = replace(settings, url=f"http://127.0.0.1:{hung.getsockname()[1]}/v1", deadline_s=1.0)
        chat = FallbackChat(OpenAIChat(s, PROMPT, memory=local.chat_memory, render=local.prompt_tokens), local)
        t = time.perf_counter()
        reply = "".join(chat.reply("Hello?"))
        took = time.perf_counter() - t
    assert reply
    assert s.deadline_s <= took < s.connect_timeout_s + s.deadline_s + 10.0
    assert chat.health.state == "down"


def test_config_show_never_prints_the_key(tmp_path):
    import os
    import subprocess
    import sys

    config = tmp_path / "c.yaml"
    config.write_text("llm:\n  engine: openai\n  url: http://127.0.0.1:9/v1\n  api_key_env: COMPANION_TEST_KEY\n")
    env = {**os.environ, "COMPANION_TEST_KEY": KEY}
    argv = [sys.executable, "-m", "companion", "config", "show", "--config", str(config)]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert proc.returncode == 0 and "COMPANION_TEST_KEY" in proc.stdout, proc.stderr
    assert KEY not in proc.stdout + proc.stderr


def test_the_fallback_chat_offers_what_the_local_model_offers(settings, local):
    chat = FallbackChat(OpenAIChat(settings, PROMPT, memory=local.chat_memory), local)
    assert chat.end_of_turn_probability == local.end_of_turn_probability
    alone = FallbackChat(OpenAIChat(settings, PROMPT), None)
    assert not hasattr(alone, "end_of_turn_probability")
