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


def make_loop(pattern: str, gate, chat: ScriptChat, heard: list[str], options: LoopOptions, listen=None, echo=None):
    """A live loop on a '#'/'_' pattern of 30 ms frames, paced by ``gate``; (loop, events, sink).
    ``echo``: makes the loop's echo path from its sink."""
    chunks, _ = speech_pattern(pattern)
    sink = PacedSink()
    bus = EventBus()
    events: list[Event] = []
    bus.subscribe(events.append)
    loop = VoiceLoop(
        source=ListSource(chunks, live=True, gate=gate),
        sink=sink,
        detector=TurnDetector(VadSettings(end_silence_ms=300), classifier=PatternVad()),
        stt=ScriptSTT(heard),
        chat=chat,
        tts=LongTTS(),
        persona=PERSONA,
        listen=listen or ListenSettings(barge_in_ms=250),
        options=options,
        bus=bus,
        echo=None if echo is None else echo(sink),
    )
    return loop, events, sink


def loop_with_burst(burst_frames: int | str, *, barge_in: bool = True, replies=None, listen=None, echo=None):
    """A turn, then ``burst_frames`` of voice (or that pattern) while the robot is speaking its reply."""
    first = 10 + 30 + 12
    burst = "#" * burst_frames if isinstance(burst_frames, int) else burst_frames
    sink_playing = threading.Event()

    def gate(i: int) -> None:
        if i == first:  # the interruption starts once the robot has been speaking a while
            assert sink_playing.wait(5)
            threading.Event().wait(0.2)
        if i >= first:
            threading.Event().wait(0.03)  # from here on, the mic runs in real time

    chat = ScriptChat(replies or [LONG, "Yes, I stop."])
    pattern = "_" * 10 + "#" * 30 + "_" * 12 + burst + "_" * 40
    loop, events, sink = make_loop(
        pattern, gate, chat, ["tell me a story", "wait stop"], LoopOptions(barge_in=barge_in), listen, echo
    )
    sink_playing = sink.playing
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


PAUSING = ListenSettings(barge_in_ms=250, barge_in_pause_ms=120)


def test_a_voice_over_the_robot_pauses_it_at_once_and_a_cough_lets_it_go_on():
    """At barge_in_pause_ms (120) of voice the robot holds its voice; a cough (150 ms) ends
    there, and the reply goes on; a voice that goes on to barge_in_ms interrupts it."""
    loop, events, sink, _ = loop_with_burst(5, listen=PAUSING)
    loop.run()
    assert [e for e in sink.events if e in ("pause", "go on", "fade")] == ["pause", "go on"]
    loop, events, sink, _ = loop_with_burst(20, listen=PAUSING)
    loop.run()
    assert [e for e in sink.events if e in ("pause", "go on", "fade")] == ["pause", "fade"]
    assert finished(events)[0].interrupted


def test_voice_that_paused_the_robot_once_does_not_pause_it_again():
    """A cough (150 ms), then, after the voice went on, a click (60 ms) in the same run of
    sound: what counts again is the fresh voice, not the cough still in the window."""
    loop, _, sink, _ = loop_with_burst("#" * 5 + "_" * 9 + "#" * 2, listen=PAUSING)
    loop.run()
    assert [e for e in sink.events if e in ("pause", "go on", "fade")] == ["pause", "go on"]


def test_with_the_pause_off_the_voice_is_not_paused():
    loop, _, sink, _ = loop_with_burst(5, listen=ListenSettings(barge_in_ms=250, barge_in_pause_ms=0))
    loop.run()
    assert "pause" not in sink.events and "fade" not in sink.events


def test_a_short_turn_in_two_runs_of_voice_interrupts_when_it_ends():
    """ "Wait, stop." said in two short runs (150 ms, a pause, 150 ms): the robot stops for it (250
    ms of voice within 625 ms; and a turn it makes is one to answer now in any case)."""
    loop, events, sink, _ = loop_with_burst("#" * 5 + "_" * 8 + "#" * 5)
    loop.run()
    records = finished(events)
    assert [r.heard for r in records] == ["tell me a story", "wait stop"]
    assert records[0].interrupted and "fade" in sink.events


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


def went_on_loop(burst: str, *, resume: bool = True):
    """A turn, a pause just long enough to end it, then ``burst`` before the (slow) reply is heard."""
    chat = ScriptChat([[lambda: threading.Event().wait(1.2), LONG], "Yes, goodbye."])
    pattern = "_" * 10 + "#" * 30 + "_" * 12 + burst + "_" * 60
    real_time = lambda _i: threading.Event().wait(0.03)  # noqa: E731
    options = LoopOptions(resume_turns=resume)  # off by default
    loop, events, sink = make_loop(pattern, real_time, chat, ["that sounds lovely", "goodbye for now"], options)
    return loop, events, sink, chat


def test_a_user_who_goes_on_before_the_reply_is_heard_is_not_talked_over():
    """ "That sounds lovely. [pause] Goodbye for now!": the pause ended the turn, but the user went
    on before the reply was heard; the reply is dropped unheard and the rest is the next turn."""
    loop, events, sink, chat = went_on_loop("#" * 20)
    loop.run()
    assert loop.error is None
    records = finished(events)
    assert [r.heard for r in records] == ["that sounds lovely", "goodbye for now"]
    assert records[0].interrupted and not records[0].heard_reply
    assert list(sink.replies) == [records[1].turn]  # only the second reply was ever played
    assert "remember: —" in chat.events


def test_a_user_who_goes_on_twice_is_heard_both_times():
    """ "Wow. [pause] That is amazing. [pause] Thank you!": each pause ended a turn and each reply
    was dropped unheard. A dropped reply was never played, so it leaves no echo to be deaf to: the
    third part, said just after the second reply was dropped, is heard and holds that reply too
    (it was lost in the half-duplex echo window, and the reply played over it)."""
    slow = lambda: threading.Event().wait(0.5)  # noqa: E731
    chat = ScriptChat([[slow, "Short one."], [slow, "Another one."], "Yes, goodbye."])
    pattern = "_" * 10 + "#" * 30 + "_" * 12 + "#" * 20 + "_" * 12 + "#" * 20 + "_" * 60
    real_time = lambda _i: threading.Event().wait(0.03)  # noqa: E731
    heard = ["wow", "that is amazing", "thank you"]
    loop, events, sink = make_loop(pattern, real_time, chat, heard, LoopOptions(resume_turns=True))
    loop.run()
    assert loop.error is None
    records = finished(events)
    assert [r.heard for r in records] == heard
    assert records[0].interrupted and records[1].interrupted
    assert list(sink.replies) == [records[2].turn]


def test_a_knock_after_the_turn_does_not_drop_the_reply():
    loop, events, sink, _ = went_on_loop("#" * 4)  # 120 ms
    loop.run()
    records = finished(events)
    assert [r.heard for r in records] == ["that sounds lovely"]
    assert not records[0].interrupted and list(sink.replies) == [records[0].turn]


def test_without_resume_turns_the_reply_is_played_over_the_user():
    loop, events, sink, _ = went_on_loop("#" * 20, resume=False)
    loop.run()
    records = finished(events)
    assert not records[0].interrupted and records[0].turn in sink.replies


class EchoEverything:
    """An echo canceller that takes every voice over the robot for its own echo (as a filter
    misadjusted by a voice arriving with the reply's first echo did on the bench); the robot's
    sound is on the microphone while the sink plays."""

    delay_known = trained = True

    def __init__(self, sink: PacedSink) -> None:
        self.asked = 0
        self.sink = sink

    @property
    def echo_possible(self) -> bool:
        return self.sink.playing.is_set()

    @property
    def robot_audible(self) -> bool:
        return self.echo_possible

    def clean(self, samples, captured_at):
        return samples

    def is_echo(self, *, act=True):
        self.asked += 1
        return True


def test_a_voice_that_began_before_the_reply_is_no_echo_of_it():
    """ "Wait, stop. [pause] What is your name?": the pause ended the turn and the reply started
    while the user was already saying the rest. Whatever the canceller says, the robot's echo
    cannot have started that voice: the robot stops, and the rest is the next turn."""
    chat = ScriptChat([[lambda: threading.Event().wait(0.2), LONG], "Yes, I stop."])
    pattern = "_" * 10 + "#" * 30 + "_" * 12 + "#" * 25 + "_" * 60
    real_time = lambda _i: threading.Event().wait(0.03)  # noqa: E731
    # resume_turns off: the reply starts over the voice (with it, the reply would wait for them)
    options = LoopOptions(barge_in=True, resume_turns=False)
    loop, events, sink = make_loop(
        pattern, real_time, chat, ["wait stop", "what is your name"], options, echo=EchoEverything
    )
    loop.run()
    assert loop.error is None
    records = finished(events)
    assert [r.heard for r in records] == ["wait stop", "what is your name"]
    assert records[0].interrupted and "fade" in sink.events


def test_a_voice_that_began_over_the_reply_is_still_checked_for_echo():
    loop, events, sink, _ = loop_with_burst(20, echo=EchoEverything)
    echo = loop.echo
    loop.run()
    assert echo.asked
    assert [r.heard for r in finished(events)] == ["tell me a story"]
    assert "fade" not in sink.events


class EchoWhenWeighed(EchoEverything):
    """Takes a voice over the robot for its echo when a barge-in is weighed, not when a pause is
    (the bench: a chance peak let the robot pause, then the leak the voice's arrival had caused
    in the filter showed). ``dies``: the robot's sound leaves the microphone when it pauses."""

    def __init__(self, sink: PacedSink, *, dies: bool = True) -> None:
        super().__init__(sink)
        self.dies = dies

    @property
    def robot_audible(self) -> bool:
        said = [e for e in self.sink.events if e in ("pause", "go on")]
        paused = bool(said) and said[-1] == "pause"
        return self.echo_possible and not (paused and self.dies)

    def is_echo(self, *, act=True):
        self.asked += 1
        return act


def test_a_voice_that_goes_on_while_the_robot_is_paused_interrupts_it_whatever_the_canceller_said():
    loop, events, sink, _ = loop_with_burst(20, listen=PAUSING, echo=EchoWhenWeighed)
    loop.run()
    assert loop.error is None
    assert [e for e in sink.events if e in ("pause", "go on", "fade")] == ["pause", "fade"]
    records = finished(events)
    assert [r.heard for r in records] == ["tell me a story", "wait stop"]
    assert records[0].interrupted


def test_a_voice_taken_for_echo_that_never_goes_on_alone_lets_the_reply_go_on():
    loop, events, sink, _ = loop_with_burst(20, listen=PAUSING, echo=lambda sink: EchoWhenWeighed(sink, dies=False))
    loop.run()
    assert loop.error is None
    assert [e for e in sink.events if e in ("pause", "go on", "fade")] == ["pause", "go on"]
    assert [r.heard for r in finished(events)] == ["tell me a story"]
