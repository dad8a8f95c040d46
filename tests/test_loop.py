"""The voice loop's own logic, with fakes at the seams (ordering, faults, modes)."""

from __future__ import annotations

import threading

import pytest
from fakes import ListSource, MemorySink, PatternVad, ScriptChat, ScriptSTT, ToneTTS, speech_pattern

from companion.config import ListenSettings, VadSettings
from companion.loop import LoopOptions, VoiceLoop, strip_wake_phrase
from companion.messages import Event, State, StateChange, TurnFinished
from companion.persona import Persona
from companion.stages import EventBus
from companion.vad import TurnDetector

PERSONA = Persona(name="Rocky", system_prompt="You are Rocky.", fallback="Rocky confused.")
TWO_TURNS = "_" * 10 + "#" * 30 + "_" * 30 + "#" * 30 + "_" * 30


def make_loop(
    stt, chat, tts, *, pattern=TWO_TURNS, listen=None, live=False, persona=PERSONA, max_sentences=3, **kwargs
):
    chunks, _ = speech_pattern(pattern)
    bus = EventBus()
    events: list[Event] = []
    bus.subscribe(events.append)
    loop = VoiceLoop(
        source=ListSource(chunks, live=live),
        sink=MemorySink(),
        detector=TurnDetector(VadSettings(end_silence_ms=300), classifier=PatternVad()),
        stt=stt,
        chat=chat,
        tts=tts,
        persona=persona,
        listen=listen or ListenSettings(),
        options=kwargs.pop("options", LoopOptions(max_sentences=max_sentences)),
        bus=bus,
        **kwargs,
    )
    return loop, events


def run(loop) -> None:
    loop.source.gate = lambda i: loop.wait_idle()  # a person who waits for the answer
    loop.run()
    assert loop.error is None


def finished(events) -> list:
    return [e.record for e in events if isinstance(e, TurnFinished)]


def test_one_reply_per_turn_in_order():
    chat = ScriptChat(["Hello friend. I am Rocky.", "Good good good."])
    tts = ToneTTS()
    loop, events = make_loop(ScriptSTT(["hi rocky", "how are you"]), chat, tts)
    run(loop)
    records = finished(events)
    assert [r.heard for r in records] == ["hi rocky", "how are you"]
    assert [r.reply for r in records] == ["Hello friend. I am Rocky.", "Good good good."]
    assert tts.said == ["Hello friend.", "I am Rocky.", "Good good good."]
    assert loop.sink.events == ["begin 1", "end 1", "begin 2", "end 2", "close"]
    for r in records:
        assert set(r.timings_ms) >= {"vad", "stt", "llm_first_token", "first_sentence", "tts_first_audio", "response"}


def test_first_sentence_is_spoken_before_the_reply_is_complete():
    tts = ToneTTS()
    order: list[str] = tts.events

    def wait_for_tts() -> None:
        if not tts.started.wait(timeout=10):
            order.append("timeout: TTS did not start while the LLM was generating")

    chat = ScriptChat([["First sentence.", " Second", wait_for_tts, " sentence."]])
    chat.events = order
    loop, _ = make_loop(ScriptSTT(["hi"]), chat, tts, pattern="_" * 10 + "#" * 30 + "_" * 30)
    run(loop)
    assert order.index("tts start: First sentence.") < order.index("llm done")
    assert not [e for e in order if e.startswith("timeout")]


def test_reply_is_capped_at_max_sentences():
    chat = ScriptChat(["One. Two. Three. Four. Five."])
    tts = ToneTTS()
    loop, events = make_loop(ScriptSTT(["hi"]), chat, tts, pattern="_" * 10 + "#" * 30 + "_" * 30, max_sentences=2)
    run(loop)
    assert tts.said == ["One.", "Two."]
    assert finished(events)[0].reply == "One. Two."


def test_a_failing_stt_speaks_the_fallback_and_the_next_turn_works():
    chat = ScriptChat(["Second reply."])
    tts = ToneTTS()
    loop, events = make_loop(ScriptSTT([RuntimeError("whisper broke"), "are you ok"]), chat, tts)
    run(loop)
    records = finished(events)
    assert records[0].error.startswith("stt:")
    assert tts.said == ["Rocky confused.", "Second reply."]
    assert records[1].heard == "are you ok" and records[1].error is None


def test_a_failing_llm_speaks_the_fallback_and_the_next_turn_works():
    chat = ScriptChat([ValueError("llama broke"), "Fine now."])
    tts = ToneTTS()
    loop, events = make_loop(ScriptSTT(["one", "two"]), chat, tts)
    run(loop)
    assert tts.said == ["Rocky confused.", "Fine now."]
    assert finished(events)[0].error.startswith("llm:")


def test_a_failing_tts_skips_the_sentence_and_the_next_turn_works():
    chat = ScriptChat(["Bad words here.", "Good words."])
    tts = ToneTTS(fail_on="Bad")
    loop, events = make_loop(ScriptSTT(["one", "two"]), chat, tts)
    run(loop)
    records = finished(events)
    assert records[0].error.startswith("tts:")
    assert tts.said == ["Good words."]
    assert records[1].error is None


def test_a_failing_style_transform_speaks_the_plain_sentence():
    class Broken(Persona):
        def transform(self, sentence: str) -> str:
            raise RuntimeError("bad rule")

    persona = Broken(name="Rocky", system_prompt="x")
    tts = ToneTTS()
    loop, _ = make_loop(
        ScriptSTT(["hi"]), ScriptChat(["Plain text."]), tts, pattern="_" * 10 + "#" * 30 + "_" * 30, persona=persona
    )
    run(loop)
    assert tts.said == ["Plain text."]


def test_wake_mode_answers_only_turns_that_start_with_the_wake_phrase():
    chat = ScriptChat(["Yes yes."])
    loop, events = make_loop(
        ScriptSTT(["what a nice day", "Hey Rocky, are you there?"]),
        chat,
        ToneTTS(),
        listen=ListenSettings(mode="wake", wake_phrases=("hey rocky",)),
    )
    run(loop)
    assert [r.heard for r in finished(events)] == ["Hey Rocky, are you there?"]
    assert chat.heard == ["are you there?"]


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("Hey Rocky, what's up?", "what's up?"),
        ("hey rocky what time is it", "what time is it"),
        ("Rocky! Hello.", "Hello."),
        ("Rocky", ""),
        ("Hey there Rocky", None),
        ("I like rocks", None),
        ("", None),
    ],
)
def test_strip_wake_phrase(text, want):
    assert strip_wake_phrase(text, ("Rocky", "hey rocky")) == want


def test_a_live_mic_is_ignored_while_the_robot_speaks():
    # the second burst arrives while the first reply is being played: it must not become a turn
    pattern = "_" * 10 + "#" * 30 + "_" * 12 + "#" * 20 + "_" * 40
    chunks, _ = speech_pattern(pattern)
    speaking = threading.Event()
    release = threading.Event()

    class SlowSink(MemorySink):
        def write(self, audio):
            speaking.set()
            release.wait(5)
            return 0.0

    def gate(i: int) -> None:
        if i == 10 + 30 + 12:  # the echo starts: wait until the robot is speaking
            speaking.wait(5)
        if i == 10 + 30 + 12 + 20 + 5:
            release.set()

    loop, events = make_loop(ScriptSTT(["hello", "echo"]), ScriptChat(["Hi."]), ToneTTS(), pattern=pattern, live=True)
    loop.sink = SlowSink()
    loop.source = ListSource(chunks, live=True, gate=gate)
    loop.run()
    assert [r.heard for r in finished(events)] == ["hello"]


def test_muted_loop_hears_nothing():
    loop, events = make_loop(ScriptSTT(["a", "b"]), ScriptChat([]), ToneTTS())
    loop.set_muted(True)
    run(loop)
    assert finished(events) == []


def test_push_to_talk_release_ends_the_turn_at_once():
    # speech continues; the button is let go in the middle: the turn ends there, not at the silence
    pattern = "_" * 5 + "#" * 60 + "_" * 30
    chunks, _ = speech_pattern(pattern)
    loop, events = make_loop(ScriptSTT(["held"]), ScriptChat(["Ok."]), ToneTTS(), pattern=pattern)

    def gate(i: int) -> None:
        if i == 3:
            loop.set_talk_button(True)
        if i == 40:
            loop.set_talk_button(False)

    loop.source = ListSource(chunks, gate=gate)
    loop.run()
    records = finished(events)
    assert [r.heard for r in records] == ["held"]
    assert records[0].speech_end_s < 40 * 0.03 + 0.01


def test_states_go_idle_listening_thinking_speaking():
    loop, events = make_loop(
        ScriptSTT(["hi"]), ScriptChat(["Hello."]), ToneTTS(), pattern="_" * 10 + "#" * 30 + "_" * 30
    )
    run(loop)
    states = [e.state for e in events if isinstance(e, StateChange)]
    assert states[:4] == [State.LISTENING, State.THINKING, State.SPEAKING, State.IDLE]


def test_persona_swap_applies_before_the_next_turn():
    chat = ScriptChat(["One.", "Two."])
    tts_a, tts_b = ToneTTS(), ToneTTS()
    loop, events = make_loop(ScriptSTT(["a", "b"]), chat, tts_a)
    other = Persona(name="Wheatley", system_prompt="You are Wheatley.")
    swapped = threading.Event()

    def on(e: Event) -> None:
        if isinstance(e, TurnFinished) and not swapped.is_set():
            loop.set_persona(other, tts_b)
            swapped.set()

    loop.bus.subscribe(on)
    run(loop)
    assert tts_a.said == ["One."] and tts_b.said == ["Two."]
    assert [r.persona for r in finished(events)] == ["Rocky", "Wheatley"]
    assert chat.prompts[-1].system == "You are Wheatley."


def test_stop_ends_every_thread_and_closes_the_sink():
    chunks, _ = speech_pattern("_" * 2000)
    loop, _ = make_loop(ScriptSTT([]), ScriptChat([]), ToneTTS())
    loop.source = ListSource(chunks, gate=lambda i: threading.Event().wait(0.001))
    loop.start()
    loop.stop()
    assert loop.wait(timeout=5)
    assert loop.sink.events[-1] == "close"


def test_a_lost_microphone_is_retried_with_backoff_and_listening_resumes():
    from companion.errors import NoAudioDeviceError
    from companion.stages import DeviceLost

    chunks, _ = speech_pattern("_" * 10 + "#" * 30 + "_" * 30)

    class Flaky(ListSource):
        attempts = 0

        def chunks(self):
            Flaky.attempts += 1
            if Flaky.attempts == 1:
                yield from self.chunks_[:5]
                raise DeviceLost("unplugged")
            if Flaky.attempts == 2:
                raise NoAudioDeviceError("no audio input device found")
            yield from self.chunks_

    waits: list[float] = []
    loop, events = make_loop(
        ScriptSTT(["back again"]), ScriptChat(["Welcome back."]), ToneTTS(), sleep=lambda s: waits.append(s) or False
    )
    loop.source = Flaky(chunks, live=True)
    loop.run()
    assert waits == [0.5, 1.0]
    assert [r.heard for r in finished(events)] == ["back again"]
    states = [e.state for e in events if isinstance(e, StateChange)]
    assert State.ERROR in states and states[states.index(State.ERROR) + 1] == State.IDLE


def test_a_hung_llm_ends_the_turn_with_the_fallback_and_the_loop_stays_healthy():
    never = threading.Event()
    chat = ScriptChat([["Thinking", lambda: never.wait(30)], "Second answer."])
    tts = ToneTTS()
    loop, events = make_loop(ScriptSTT(["one", "two"]), chat, tts, options=LoopOptions(stage_timeout_s=0.3))
    run(loop)
    never.set()
    records = finished(events)
    assert records[0].error.startswith("llm: no reply from the language model")
    assert tts.said == ["Rocky confused.", "Second answer."]
    assert loop.hung_stages() == []


def test_a_truly_stuck_stage_is_reported_as_hung():
    block = threading.Event()

    class StuckTTS(ToneTTS):
        def synthesize(self, text, *, speed=None):
            block.wait(10)
            yield from super().synthesize(text)

    now = [0.0]
    loop, _ = make_loop(
        ScriptSTT(["hi"]),
        ScriptChat(["Hello."]),
        StuckTTS(),
        pattern="_" * 10 + "#" * 30 + "_" * 30,
        options=LoopOptions(stage_timeout_s=5.0),
        clock=lambda: now[0],
    )
    loop.start()
    for _ in range(200):
        if loop.beats.busy_since.get("companion-voice") is not None:
            break
        threading.Event().wait(0.01)
    assert loop.hung_stages() == []
    now[0] = 6.0
    assert loop.hung_stages() == ["companion-voice"]
    block.set()
    loop.stop()
    assert loop.wait(timeout=5)


def test_the_first_clause_is_spoken_before_its_sentence_is_written_and_styled_as_part_of_it():
    from companion.persona import SHIPPED_DIR, load_persona_file, transform_text

    rocky = load_persona_file(SHIPPED_DIR / "rocky.yaml")
    tts = ToneTTS()
    order: list[str] = tts.events

    def wait_for_tts() -> None:
        if not tts.started.wait(timeout=10):
            order.append("timeout: TTS did not start on the first clause")

    chat = ScriptChat([["I have a question for you,", " do", wait_for_tts, " you like the ship? I like it."]])
    chat.events = order
    loop, events = make_loop(
        ScriptSTT(["hi"]), chat, tts, pattern="_" * 10 + "#" * 30 + "_" * 30, persona=rocky, max_sentences=1
    )
    run(loop)
    assert not [e for e in order if e.startswith("timeout")]
    assert tts.said == ["I have question for you,", "do you like ship, question?"]  # two pieces, one sentence
    record = finished(events)[0]
    assert record.reply == "I have a question for you, do you like the ship?"
    assert record.spoken == transform_text(rocky, record.reply)
    assert "remember: I have a question for you, do you like the ship?" in order
    assert {"first_sentence", "tts_first_audio"} <= set(record.timings_ms)


def test_what_was_heard_of_a_reply_cut_in_its_second_piece():
    from companion.loop.state import Reply
    from companion.messages import TurnRecord

    reply = Reply(TurnRecord(turn=1, speech_end_s=0.0, persona="Rocky"), ToneTTS())
    reply.written = {0: "One two three four,", 1: "five six seven eight.", 2: "Nine."}
    reply.played = {0: [(0.0, 1.0)], 1: [(1.0, 2.0)], 2: [(2.0, 2.5)]}
    assert reply.heard_text() == "One two three four, five six seven eight. Nine."
    reply.cut_at = 1.5
    assert reply.heard_text() == "One two three four, five six"
