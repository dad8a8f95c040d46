"""The speaker amp: on before the first sample, off after the idle time, never left on."""

from __future__ import annotations

import numpy as np
import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from companion.body.core import Body
from companion.body.settings import AmpSettings, EyeSettings, GpioSettings
from companion.messages import SpokenAudio, State, StateChange
from companion.stages import EventBus

AMP_PIN = 26


class FakeClock:
    def __init__(self, start: float = 100.0) -> None:
        self.t = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds

    def advance(self, seconds: float) -> None:
        self.t += seconds


class RecordingSink:
    """A speaker that notes when each block arrived and whether the amp was on."""

    def __init__(self, clock: FakeClock, amp_pin: object, fail_end: bool = False) -> None:
        self.clock = clock
        self.amp_pin = amp_pin
        self.fail_end = fail_end
        self.writes: list[tuple[float, object]] = []
        self.closed = False

    def begin(self, turn: int) -> None:
        pass

    def write(self, audio: SpokenAudio) -> float:
        self.writes.append((self.clock(), self.amp_pin.state))  # type: ignore[attr-defined]
        return 0.05

    def end(self, turn: int) -> str:
        if self.fail_end:
            raise RuntimeError("speaker gone")
        return ""

    def close(self) -> None:
        self.closed = True


class IdleLoop:
    muted = False

    def set_muted(self, muted: bool) -> None: ...

    def set_talk_button(self, held: bool) -> None: ...


def audio(seconds: float = 0.1, turn: int = 1) -> SpokenAudio:
    return SpokenAudio(np.zeros(int(16000 * seconds), np.float32), 16000, turn, 0)


@pytest.fixture
def factory() -> MockFactory:
    f = MockFactory(pin_class=MockPWMPin)
    yield f
    f.reset()


def make(factory: MockFactory, clock: FakeClock, **amp: object) -> tuple[Body, RecordingSink, object]:
    settings = GpioSettings(enabled=True, amp=AmpSettings(**amp), eyes=EyeSettings(kind="none"))  # type: ignore[arg-type]
    body = Body(settings, factory, clock, clock.sleep)
    pin = factory.pin(AMP_PIN)
    inner = RecordingSink(clock, pin)
    return body, inner, pin


def test_amp_is_on_and_warm_before_the_first_sample(factory: MockFactory) -> None:
    clock = FakeClock()
    body, inner, pin = make(factory, clock, warmup_ms=50)
    sink = body.wrap_sink(inner)
    assert pin.state == 0
    sink.begin(1)
    switched_on = clock()
    clock.advance(0.01)  # synthesis of the first sentence
    sink.write(audio())
    first_write_time, amp_state = inner.writes[0]
    assert amp_state == 1
    assert first_write_time - switched_on == pytest.approx(0.05)
    assert clock.slept == [pytest.approx(0.04)]
    body.close()


def test_no_wait_when_the_amp_has_warmed_up_during_synthesis(factory: MockFactory) -> None:
    clock = FakeClock()
    body, inner, _pin = make(factory, clock, warmup_ms=50)
    sink = body.wrap_sink(inner)
    sink.begin(1)
    clock.advance(0.3)
    sink.write(audio())
    sink.write(audio())
    assert clock.slept == []
    body.close()


def test_amp_goes_off_after_the_idle_time(factory: MockFactory) -> None:
    clock = FakeClock()
    body, inner, pin = make(factory, clock, idle_off_s=2.0)
    sink = body.wrap_sink(inner)
    sink.begin(1)
    sink.write(audio())
    sink.end(1)
    ended = clock()
    body.step(ended + 1.99)
    assert pin.state == 1
    body.step(ended + 2.0)
    assert pin.state == 0
    body.close()


def test_back_to_back_replies_keep_the_amp_on(factory: MockFactory) -> None:
    clock = FakeClock()
    body, inner, pin = make(factory, clock, idle_off_s=2.0)
    sink = body.wrap_sink(inner)
    for turn in (1, 2):
        sink.begin(turn)
        sink.write(audio())
        sink.end(turn)
        clock.advance(1.0)
        body.step()
    assert [s.state for s in pin.states] == [False, True]
    clock.advance(1.0)
    body.step()
    assert [s.state for s in pin.states] == [False, True, False]
    body.close()


def test_write_without_begin_still_switches_the_amp_on(factory: MockFactory) -> None:
    clock = FakeClock()
    body, inner, _pin = make(factory, clock, warmup_ms=30)
    body.wrap_sink(inner).write(audio())
    assert inner.writes[0][1] == 1
    assert clock.slept == [pytest.approx(0.03)]
    body.close()


def test_close_switches_the_amp_off_mid_reply(factory: MockFactory) -> None:
    clock = FakeClock()
    body, inner, pin = make(factory, clock)
    sink = body.wrap_sink(inner)
    sink.begin(1)
    sink.write(audio())
    sink.close()
    assert inner.closed
    assert pin.state == 0
    body.close()


def test_a_failing_speaker_does_not_leave_the_amp_on(factory: MockFactory) -> None:
    clock = FakeClock()
    body, inner, pin = make(factory, clock, idle_off_s=0.5)
    inner.fail_end = True
    sink = body.wrap_sink(inner)
    sink.begin(1)
    sink.write(audio())
    with pytest.raises(RuntimeError):
        sink.end(1)
    body.step(clock() + 0.5)
    assert pin.state == 0
    body.close()


def test_active_low_enable_pin_is_inverted(factory: MockFactory) -> None:
    clock = FakeClock()
    body, inner, pin = make(factory, clock, active_high=False, idle_off_s=0)
    assert pin.state == 1  # off
    sink = body.wrap_sink(inner)
    sink.begin(1)
    assert pin.state == 0  # on
    sink.end(1)
    assert pin.state == 1
    body.close()


def test_body_close_leaves_the_amp_off(factory: MockFactory) -> None:
    clock = FakeClock()
    body, inner, pin = make(factory, clock)
    body.wrap_sink(inner).begin(1)
    assert pin.state == 1
    body.close()
    assert pin.state == 0


def test_without_an_amp_pin_the_speaker_is_unchanged(factory: MockFactory) -> None:
    clock = FakeClock()
    body = Body(GpioSettings(enabled=True, amp=AmpSettings(pin=None)), factory, clock, clock.sleep)
    inner = RecordingSink(clock, None)
    assert body.wrap_sink(inner) is inner
    body.close()


def test_thinking_warms_the_amp_up_so_the_reply_does_not_wait(factory: MockFactory) -> None:
    clock = FakeClock()
    body, inner, pin = make(factory, clock, warmup_ms=50, idle_off_s=2.0)
    bus = EventBus()
    body.attach(bus, IdleLoop())
    bus.publish(StateChange(State.THINKING, State.LISTENING, "default"))
    assert pin.state == 1
    clock.advance(0.6)  # the LLM's first sentence
    sink = body.wrap_sink(inner)
    sink.begin(1)
    sink.write(audio())
    assert clock.slept == []
    body.close()


def test_thinking_without_a_reply_lets_the_amp_go_off_again(factory: MockFactory) -> None:
    clock = FakeClock()
    body, _inner, pin = make(factory, clock, idle_off_s=2.0)
    bus = EventBus()
    body.attach(bus, IdleLoop())
    bus.publish(StateChange(State.THINKING, State.LISTENING, "default"))
    bus.publish(StateChange(State.LISTENING, State.THINKING, "default"))  # nothing to say
    body.step(clock() + 2.0)
    assert pin.state == 0
    body.close()
