"""The LLM stage with the real bundled model: prompt caching, memory budget, caps."""

from __future__ import annotations

import logging

import numpy as np
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


def test_what_is_remembered_comes_after_the_examples_so_they_stay_cached(chat):
    """A cold start after the memory changed re-read the examples (122 tokens, ~1 s here):
    the memory came before them in the system message."""
    assert chat._memory_last  # ChatML takes a second system message
    chat.reset(PersonaPrompt(PROMPT.system, PROMPT.examples, "The user's name is Ada."))
    old = chat.prompt_tokens([], "Hello")
    chat.reset(PersonaPrompt(PROMPT.system, PROMPT.examples, "The user's name is Bo. Earlier, they talked of trains."))
    new = chat.prompt_tokens([], "Hello")
    common = next(i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b)
    rendered = chat._render([], "Hello")
    through_examples = rendered[: rendered.index("I am Pip, a little robot.") + len("I am Pip, a little robot.")]
    assert common >= len(chat.tokens(through_examples))  # the persona and examples are shared
    assert "The user's name is Bo. Earlier" in rendered
    chat.reset(PROMPT)


def test_a_remote_template_gets_the_memory_in_its_one_system_message():
    from companion.llm_memory import ChatMemory

    memory = ChatMemory(LlmSettings(), PersonaPrompt("You are Pip.", (("hi", "hello"),), "The user is Ada."))
    first, *rest = memory.messages([], "hey")
    assert first == {"role": "system", "content": "You are Pip.\nThe user is Ada."}
    assert [m["role"] for m in rest] == ["user", "assistant", "user"]
    last = memory.messages([("a", "b")], "hey", memory_last=True)
    assert [m["role"] for m in last] == ["system", "user", "assistant", "system", "user", "assistant", "user"]
    assert last[3]["content"] == "The user is Ada." and last[0]["content"] == "You are Pip."


# ---- speculation: probes and prefills that never hold up the reply ------------------------


def test_a_speculative_prefill_of_the_final_words_leaves_only_the_closing_tokens(chat):
    chat.reset()
    chat.prefill("Tell me about the moon.")  # the draft, while the turn's end is confirmed
    list(chat.reply("Tell me about the moon."))
    assert chat.last_evaluated_tokens <= 2


def test_a_draft_the_user_went_on_from_costs_only_its_own_words_over_a_long_session(chat):
    """Throwing a draft away must not disturb the persona and history in the KV cache."""
    chat.reset()
    evaluated = []
    for i in range(10):
        chat.prefill(f"Tell me about number {i} and")  # speculative: the user goes on after this
        question = f"Tell me about number {i} and the moon."
        "".join(chat.reply(question))
        evaluated.append(chat.last_evaluated_tokens)
        chat.prefill()  # the idle prefill after the reply, as the loop does
    # only the words after the draft, the template's tokens, and (once) a trim of old turns
    assert sorted(evaluated)[len(evaluated) // 2] <= 12, evaluated
    assert sum(e > 12 for e in evaluated) <= 2, evaluated


def test_stale_speculative_prefills_are_skipped_once_a_newer_one_comes(chat, caplog):
    chat.reset()
    pieces = chat.reply("Say hello.")
    next(pieces)  # a reply is being written: the drafts below queue behind it
    with caplog.at_level(logging.DEBUG, logger="companion.llm"):
        for i in range(5):
            chat.prefill(f"draft number {i} of what the user says", wait=False)
        "".join(pieces)
        chat.prefill(None)  # runs after every queued draft
    skipped = [r for r in caplog.records if "speculative prefill skipped" in r.getMessage()]
    assert len(skipped) == 4  # only the newest draft was read ahead


def test_an_end_of_turn_probe_gives_up_instead_of_waiting_behind_a_reply(chat):
    from companion.llm import LlmBusy

    chat.reset()
    pieces = chat.reply("Tell me a long story about a dragon.")
    next(pieces)  # the LLM thread is writing this reply
    with pytest.raises(LlmBusy, match="withdrawn"):
        chat.end_of_turn_probability("What time is it", timeout_s=0.001)
    "".join(pieces)
    assert 0.0 <= chat.end_of_turn_probability("What time is it", timeout_s=None) <= 1.0


# ---- no copied replies -----------------------------------------------------------------


def test_no_repeat_blocks_only_the_token_that_would_complete_an_earlier_run():
    from companion.llm_norepeat import NoRepeat

    block = NoRepeat([[1, 2, 3, 4, 5]], 4)
    assert block.banned([9, 1, 2, 3]) == {4} and block.banned([9, 2, 3, 4]) == {5}
    assert block.banned([2, 9, 3]) == set() and block.banned([3]) == set()
    scores = np.zeros(8, dtype=np.float32)
    block(np.array([7, 2, 3, 4]), scores)
    assert scores[5] == -np.inf and np.isfinite(np.delete(scores, 5)).all()
    assert not NoRepeat([[1, 2]], 4)  # nothing long enough to block


def test_a_reply_does_not_copy_what_the_robot_said_before():
    """SmolLM2-135M answered seven bench questions in a row with the same two sentences."""
    from dataclasses import replace

    said = "I'm not sure, I don't have a recipe for dinner tonight. But in my case, I am here today because it rains!"
    tokens = LlamaChat(LlmSettings(), PROMPT).tokens
    runs = {tuple(t) for t in zip(*(tokens(said)[i:] for i in range(4)), strict=False)}

    def copied(n: int) -> list[int]:
        """Runs of 4 tokens of ``said`` in each reply, with blocking at ``n`` (0: off)."""
        chat = LlamaChat(replace(LlmSettings(), temperature=0.0, no_repeat_tokens=n), PROMPT)
        for question in ("Can you tell me a joke?", "What should I cook tonight?", "Turn off the lights."):
            chat.memory.append((question, said))
        out = []
        for question in ("What is the weather like?", "Do you like music?"):
            got = tokens("".join(chat.reply(question)))
            out.append(sum(tuple(got[i : i + 4]) in runs for i in range(len(got) - 3)))
        return out

    assert max(copied(0)) >= 5  # the model does copy itself...
    assert copied(4) == [0, 0]  # ...and with the block no 4 tokens of it come back in a row
