"""Barge-in, say jobs and greetings through the loop's workers, with fakes at the seams."""

from __future__ import annotations

import threading

import numpy as np
from fakes import ListSource, PacedSink, PatternVad, ScriptChat, ScriptSTT, ToneTTS, speech_pattern

from companion.config import ListenSettings, VadSettings
from companion.loop import LoopOptions, VoiceLoop
from companion.messages import Event, State, StateChange, TurnFinished
from companion.persona import Persona
from companion.stages import EventBus
from companion.style import StyleRules
from companion.vad import TurnDetector

PERSONA = Persona(name="Rocky", system_prompt="You are Rocky.", fallback="Rocky confused.", greeting="Hello friend.")
LONG = "One two three four. Five six seven eight. Nine ten eleven twelve."


class LongTTS(ToneTTS):
    """Half a second of tone per sentence."""

    def synthesize(self, text, *, speed=None):
        self.events.append(f"tts start: {text}")
        self.said.append(text)
        yield (0.2 * np.sin(np.arange(8000) / 16000 * 2 * np.pi * 220)).astype(np.float32)


def loop_with_burst(burst_frames: int, *, barge_in: bool = True, replies=None):
    """A turn, then ``burst_frames`` of voice while the robot is speaking its reply."""
    first = 10 + 30 + 12
    pattern = "_" * 10 + "#" * 30 + "_" * 12 + "#" * burst_frames + "_" * 40
    chunks, _ = speech_pattern(pattern)
    sink = PacedSink()
    bus = EventBus()
    events: list[Event] = []
    bus.subscribe(events.append)
    loop: VoiceLoop

    def gate(i: int) -> None:
        if i == first:  # the interruption starts once the robot has been speaking a while
            assert sink.playing.wait(5)
            threading.Event().wait(0.2)
        if i >= first:
            threading.Event().wait(0.03)  # from here on, the mic runs in real time

    chat = ScriptChat(replies or [LONG, "Yes, I stop."])
    loop = VoiceLoop(
        source=ListSource(chunks, live=True, gate=gate),
        sink=sink,
        detector=TurnDetector(VadSettings(end_silence_ms=300), classifier=PatternVad()),
        stt=ScriptSTT(["tell me a story", "wait stop"]),
        chat=chat,
        tts=LongTTS(),
        persona=PERSONA,
        listen=ListenSettings(barge_in_ms=250),
        options=LoopOptions(barge_in=barge_in),
        bus=bus,
    )
    return loop, events, sink, chat


def finished(events):
    return [e.record for e in events if isinstance(e, TurnFinished)]


def test_speaking_over_the_robot_interrupts_it_and_becomes_the_next_turn():
    loop, events, sink, chat = loop_with_burst(20)
    loop.run()
    assert loop.error is None
    records = finished(events)
    assert [r.heard for r in records] == ["tell me a story", "wait stop"]
    first = records[0]
    assert first.interrupted and "fade" in sink.events
    assert first.heard_reply and LONG.startswith(first.heard_reply.rstrip("."))
    assert len(first.heard_reply) < len(LONG)
    assert chat.heard == ["tell me a story", "wait stop"]
    # only what was heard is remembered, marked as cut off
    assert f"remember: {first.heard_reply}—" in chat.events
    assert not records[1].interrupted


def test_the_rest_of_an_interrupted_reply_is_never_played():
    loop, events, sink, _ = loop_with_burst(20)
    loop.run()
    assert {a.sentence for a in sink.replies[1]} == {0}
    assert (
        finished(events)[0].heard_reply.split()
        == "One two three four".split()[: len(finished(events)[0].heard_reply.split())]
    )


def test_a_cough_shorter_than_barge_in_ms_does_not_interrupt():
    loop, events, sink, _ = loop_with_burst(5)  # 150 ms
    loop.run()
    records = finished(events)
    assert [r.heard for r in records] == ["tell me a story"]
    assert not records[0].interrupted and "fade" not in sink.events


def test_half_duplex_ignores_the_user_while_speaking():
    loop, events, _, _ = loop_with_burst(20, barge_in=False)
    loop.run()
    records = finished(events)
    assert [r.heard for r in records] == ["tell me a story"]
    assert not records[0].interrupted


def test_eyes_go_to_listening_on_barge_in():
    loop, events, _, _ = loop_with_burst(20)
    loop.run()
    states = [e.state for e in events if isinstance(e, StateChange)]
    i = states.index(State.SPEAKING)
    assert states[i + 1] == State.LISTENING


def test_say_waits_for_the_reply_being_written():
    """A say job is queued behind the turn in hand: its sentences never interleave with the reply."""
    pattern = "_" * 10 + "#" * 30 + "_" * 30
    chunks, _ = speech_pattern(pattern)
    tts = ToneTTS()
    loop: VoiceLoop

    def say_mid_reply() -> None:
        loop.say("Announcement now.")

    chat = ScriptChat([["First part.", say_mid_reply, " Second part."]])
    loop = VoiceLoop(
        source=ListSource(chunks, gate=lambda i: loop.wait_idle()),
        sink=PacedSink(),
        detector=TurnDetector(VadSettings(end_silence_ms=300), classifier=PatternVad()),
        stt=ScriptSTT(["hello"]),
        chat=chat,
        tts=tts,
        persona=PERSONA,
        listen=ListenSettings(),
    )
    loop.run()
    assert tts.said == ["First part.", "Second part.", "Announcement now."]


def test_the_greeting_is_said_at_start_in_the_persona_style():
    persona = Persona(
        name="Rocky", system_prompt="x", greeting="Are you there?", style=StyleRules(question_suffix=", question?")
    )
    chunks, _ = speech_pattern("_" * 40)
    tts = ToneTTS()
    bus = EventBus()
    events: list[Event] = []
    bus.subscribe(events.append)
    loop = VoiceLoop(
        source=ListSource(chunks),
        sink=PacedSink(),
        detector=TurnDetector(VadSettings(), classifier=PatternVad()),
        stt=ScriptSTT([]),
        chat=ScriptChat([]),
        tts=tts,
        persona=persona,
        listen=ListenSettings(),
        options=LoopOptions(greet=True),
        bus=bus,
    )
    loop.run()
    assert tts.said == ["Are you there, question?"]
    assert finished(events)[0].spoken == "Are you there, question?"
