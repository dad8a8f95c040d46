"""Memory of the user and grounded replies: the store, the wrapper, the CLI, persona facts."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from fakes import ScriptChat

from companion.memory.build import PersonaFinder
from companion.memory.extract import LIKE, NAME, Learned
from companion.memory.grounded import GroundedChat, prompt_of
from companion.memory.settings import MemorySettings
from companion.memory.store import MemoryStore
from companion.persona import load_persona, load_persona_file
from companion.settings import ConfigError


@pytest.fixture()
def store(tmp_path: Path) -> MemoryStore:
    return MemoryStore(tmp_path / "state" / "memory.sqlite3")


def grounded(store: MemoryStore | None, replies: list[object], persona: str = "rocky", **kw: object) -> GroundedChat:
    settings = MemorySettings(**kw)  # type: ignore[arg-type]
    return GroundedChat(ScriptChat(replies), load_persona(persona), store, settings, resolve=PersonaFinder())


def say(chat: GroundedChat, text: str) -> str:
    reply = "".join(chat.reply(text)).strip()
    chat.remember_spoken(reply)
    chat.prefill()
    return reply


def test_the_memory_file_is_private_and_survives_a_new_store(store: MemoryStore) -> None:
    store.add("shared", Learned(NAME, "Priya"))
    store.add("shared", Learned(LIKE, "pizza", "love"))
    for path in store.path.parent.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    store.close()
    again = MemoryStore(store.path)
    assert [(i.kind, i.value) for i in again.items("shared")] == [(NAME, "Priya"), (LIKE, "pizza")]


def test_a_new_name_replaces_the_old_and_the_store_is_bounded(tmp_path: Path) -> None:
    store = MemoryStore(tmp_path / "m.sqlite3", max_items=3)
    store.add("shared", Learned(NAME, "Priya"))
    store.add("shared", Learned(NAME, "Leo"))
    for thing in ("a", "b", "c", "a"):
        store.add("shared", Learned(LIKE, thing, "like"))
    assert [i.value for i in store.items("shared")] == ["b", "c", "a"]


def test_fact_questions_are_answered_from_the_persona_without_the_model(store: MemoryStore) -> None:
    chat = grounded(store, [])
    assert "Erid" in say(chat, "where are you from")
    assert "Grace" in say(chat, "whos your best friend")
    assert "engineer" in say(chat, "what do you do")
    assert say(chat, "goodbye") == load_persona("rocky").farewell
    assert chat.inner.heard == []  # type: ignore[attr-defined]


def test_the_user_is_remembered_across_a_restart(store: MemoryStore) -> None:
    chat = grounded(store, ["Pizza is very good."])
    assert say(chat, "my name is priya") == "Nice to meet you, Priya."
    say(chat, "i love pizza")
    store.close()
    chat = grounded(MemoryStore(store.path), [])  # a new process would build exactly these objects
    assert say(chat, "whats my name") == "Your name is Priya."
    assert say(chat, "what do i love") == "You love pizza."


def test_memory_goes_into_the_prompt_when_a_conversation_starts(store: MemoryStore) -> None:
    chat = grounded(store, ["Hello.", "Nice."])
    inner: ScriptChat = chat.inner  # type: ignore[assignment]
    chat.warm()
    assert inner.prompts[-1] is not None and "You are from the planet Erid" in inner.prompts[-1].system
    n = len(inner.prompts)
    say(chat, "hello i love jazz")
    assert len(inner.prompts) == n  # mid-conversation the cached prompt stays (no re-evaluation)
    chat.reset()
    assert inner.prompts[-1] is not None and "The user loves jazz." in inner.prompts[-1].memory


@pytest.mark.parametrize(
    ("model_says", "spoken", "problem"),
    [
        ("I am a human from the planet Erid. I fix things.", "I am an Eridian, not a human.", "human"),
        ("My name is Bob. I fix things.", "My name is Rocky.", "name"),
        ("I come from Nova Terra. I fix things.", "I am from the planet Erid.", "home"),
        ("As an AI language model, I can not. I fix things.", "I fix things.", "ai-talk"),
        ("**Sure!** I fix things.", "Sure! I fix things.", ""),
        # the first clause goes to the voice before its sentence ends; the check still sees sentences
        ("I am a human being, from the planet Erid. I fix things.", "I am an Eridian, not a human.", "human"),
        ("As an AI language model, I can not do that. I fix things.", "I fix things.", "ai-talk"),
        (
            "Oh my good friend, I come from Nova Terra. I fix things.",
            "Oh my good friend, I am from the planet Erid.",
            "home",
        ),
        ("Hello there my friend, I fix things. I fix things.", "Hello there my friend, I fix things.", ""),
    ],
)
def test_model_sentences_that_contradict_the_facts_are_replaced(
    store: MemoryStore, model_says: str, spoken: str, problem: str
) -> None:
    chat = grounded(store, [model_says])
    reply = say(chat, "tell me about yourself")
    assert reply.startswith(spoken)
    assert reply.endswith("I fix things.")
    assert chat.last.problems == ([problem] if problem else [])


def test_forget_me_and_forget_that(store: MemoryStore) -> None:
    chat = grounded(store, ["Okay.", "Okay."])
    say(chat, "my name is priya")
    say(chat, "i love pizza")
    say(chat, "forget that")
    assert say(chat, "what do i like") == "You did not tell me that yet."
    assert say(chat, "whats my name") == "Your name is Priya."
    say(chat, "forget me")
    assert store.items() == [] and store.summaries() == []
    inner: ScriptChat = chat.inner  # type: ignore[assignment]
    assert "Priya" not in (inner.prompts[-1].with_memory_in_system().system if inner.prompts[-1] else "")
    assert say(chat, "whats my name") == "You did not tell me that yet."


def test_a_persona_swap_brings_that_personas_facts(store: MemoryStore) -> None:
    chat = grounded(store, [])
    say(chat, "my name is priya")
    chat.reset(prompt_of(load_persona("wheatley")), keep_memory=False)  # what the loop does
    assert chat.persona is not None and chat.persona.name == "Wheatley"
    assert "Aperture" in say(chat, "where are you from")
    assert say(chat, "what is my name").endswith("Priya.")  # memory is shared by default


def test_per_persona_memory_keeps_personas_apart(store: MemoryStore) -> None:
    chat = grounded(store, [], scope="persona")
    say(chat, "my name is priya")
    chat.reset(prompt_of(load_persona("wheatley")))
    assert "Priya" not in say(chat, "what is my name")
    assert chat.scope == "wheatley"


def _companion(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "companion", *args], capture_output=True, text=True, env=env, timeout=60
    )


def test_the_memory_cli_shows_and_forgets_while_the_store_is_open(tmp_path: Path, isolated_home: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"state_dir: {tmp_path / 'state'}\n")
    env = {**os.environ, "XDG_CONFIG_HOME": str(isolated_home / "xdg-config")}
    assert "nothing remembered" in _companion("memory", "--config", str(config), "show", env=env).stdout
    store = MemoryStore(tmp_path / "state" / "memory.sqlite3")  # as the running daemon holds it
    chat = grounded(store, ["Okay."])
    say(chat, "my name is priya and i love pizza")
    shown = _companion("memory", "--config", str(config), "show", env=env)
    assert "name: Priya" in shown.stdout and "pizza" in shown.stdout
    done = _companion("memory", "--config", str(config), "forget", "--all", env=env)
    assert done.returncode == 0, done.stderr
    assert store.items() == []
    assert say(chat, "whats my name") == "You did not tell me that yet."
    bad = _companion("memory", "--config", str(config), "forget", "999", env=env)
    assert bad.returncode == 1 and "no remembered item with id 999" in bad.stderr


def test_persona_facts_are_checked_strictly(tmp_path: Path) -> None:
    path = tmp_path / "robo.yaml"
    path.write_text("name: Robo\nsystem_prompt: You are Robo.\nfacts:\n  home: Mars\n  hometown: Mars\n")
    with pytest.raises(ConfigError) as err:
        load_persona_file(path)
    assert str(err.value) == f"{path}: facts.hometown: unknown key; did you mean 'home'?"
    path.write_text("name: Robo\nsystem_prompt: You are Robo.\nfacts:\n  lines: {name: My name is Robo., hello: x}\n")
    with pytest.raises(ConfigError, match=r"facts\.lines\.hello: unknown key"):
        load_persona_file(path)


@pytest.mark.parametrize("name", ["rocky", "wheatley", "default"])
def test_shipped_personas_have_their_facts(name: str) -> None:
    facts = load_persona(name).facts
    assert facts.kind and facts.home and facts.job and facts.best_friend and not facts.human


def test_a_persona_without_answer_lines_gets_answers_built_from_its_facts() -> None:
    from companion.memory.answers import fact_answer
    from companion.memory.intents import Intent
    from companion.persona import Persona, PersonaFacts

    robo = Persona(
        name="Robo",
        system_prompt="You are Robo.",
        facts=PersonaFacts(
            kind="a garden robot", home="Mars", job="a gardener", friends=("Bo", "Al"), likes=("roses",)
        ),
    )
    assert fact_answer(robo, Intent.NAME) == "My name is Robo. I am a garden robot."
    assert fact_answer(robo, Intent.KIND) == "I am a garden robot, not a human."
    assert fact_answer(robo, Intent.HOME) == "I am from Mars."
    assert fact_answer(robo, Intent.JOB) == "I am a gardener."
    assert fact_answer(robo, Intent.BEST_FRIEND) == "My friends are Bo and Al."
    assert fact_answer(robo, Intent.LIKES) == "I like roses."
    assert fact_answer(Persona(name="X", system_prompt="x"), Intent.HOME) is None  # no fact: the model answers
