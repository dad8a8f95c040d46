"""The LLM stage with the real bundled model: prompt caching, memory budget, caps."""

from __future__ import annotations

import pytest

from companion.config import LlmSettings
from companion.llm import LlamaChat
from companion.messages import PersonaPrompt
from companion.sentences import split_sentences

PROMPT = PersonaPrompt(
    "You are Pip, a small friendly robot. Answer in one or two short sentences.",
    (("What are you?", "I am Pip, a little robot."),),
)


@pytest.fixture(scope="module")
def chat():
    c = LlamaChat(LlmSettings(temperature=0.0, memory_tokens=120, context_tokens=512, max_reply_tokens=48), PROMPT)
    c.warm()
    return c


def test_replies_stream_in_pieces_and_read_as_sentences(chat):
    chat.reset()
    pieces = list(chat.reply("Hello! Who are you?"))
    assert len(pieces) > 3
    text = "".join(pieces)
    assert split_sentences(text), text
    assert any(ch.isalpha() for ch in text)


def test_persona_prefix_stays_in_the_kv_cache(chat):
    chat.reset()
    prefix = chat.tokens(chat._render([], None))
    list(chat.reply("Tell me about yourself."))
    # llama.cpp keeps the evaluated tokens; the persona prefix must be their start
    cached = list(chat._llm.input_ids[: chat._llm.n_tokens])
    common = 0
    for a, b in zip(cached, prefix, strict=False):
        if a != b:
            break
        common += 1
    assert common >= len(prefix) - 8  # the generation-prompt tail may differ


def test_memory_stays_within_its_token_budget_over_many_turns(chat):
    chat.reset()
    for i in range(12):
        list(chat.reply(f"This is message number {i}. Please remember the word banana{i}."))
        assert chat.last_prompt_tokens + chat.settings.max_reply_tokens <= chat.settings.context_tokens
    history_tokens = sum(len(chat.tokens(u + a)) for u, a in chat.memory)
    assert history_tokens <= chat.settings.memory_tokens
    assert 0 < len(chat.memory) < 12  # old turns were dropped, recent ones kept
    assert "banana11" in chat.memory[-1][0]


def test_a_huge_input_never_overflows_the_context(chat):
    chat.reset()
    pieces = list(chat.reply("word " * 3000))
    assert chat.last_prompt_tokens <= chat.settings.context_tokens - chat.settings.max_reply_tokens
    assert isinstance("".join(pieces), str)


def test_reply_length_is_capped_in_tokens(chat):
    chat.reset()
    pieces = list(chat.reply("Please tell me a very long story about dragons and castles and knights."))
    assert len(pieces) <= chat.settings.max_reply_tokens


def test_reset_changes_the_persona_and_forgets(chat):
    list(chat.reply("Hi"))
    other = PersonaPrompt("You are Bolt, a grumpy robot.")
    chat.reset(other)
    assert chat.memory == [] and chat.prompt == other
    chat.reset(PROMPT)


def test_after_prefill_a_turn_only_evaluates_the_new_words(chat):
    chat.reset()
    for question in ("Hello there!", "What do you like to eat?", "Do you like music?"):
        reply = "".join(chat.reply(question))
        chat.remember_spoken(reply.strip())
        chat.prefill()
    list(chat.reply("Tell me about the sea."))
    # the user message plus the chat template's few tokens around it; nothing of the history
    assert chat.last_evaluated_tokens <= len(chat.tokens("Tell me about the sea.")) + 10


def test_memory_is_trimmed_in_steps_not_every_turn(chat):
    chat.reset()
    trims = 0
    for i in range(14):
        list(chat.reply(f"Message {i}: tell me one fact about the number {i}."))
        before = len(chat.memory)
        chat.prefill()
        if len(chat.memory) < before:
            trims += 1
    assert 0 < trims <= 14 // 2  # a trim frees room for the next turns too
    assert chat._history_tokens(chat.memory) <= chat.settings.memory_tokens


def test_shared_memory_keeps_its_budget_whatever_counts_the_tokens():
    from companion.llm_memory import ChatMemory

    memory = ChatMemory(LlmSettings(memory_tokens=100, context_tokens=400, max_reply_tokens=50), PROMPT)

    def render(history, user):  # one "token" per character: any backend's measure works the same way
        return "".join(m["content"] for m in memory.messages(history, user))

    for i in range(20):
        prompt, _ = memory.fit(render, f"message {i}", 10)
        assert len(prompt) + 50 <= 400
        assert memory.history_tokens(render, memory.turns) <= 100  # within budget whenever a prompt is made
        memory.add(f"message {i}", "a reply of some length " * 2)
    assert len(memory.turns) < 20 and memory.turns[-1][0] == "message 19"
    memory.remember_spoken("what was said")
    assert memory.turns[-1][1] == "what was said"
    assert memory.reset(PersonaPrompt("someone else")) and memory.turns == []
