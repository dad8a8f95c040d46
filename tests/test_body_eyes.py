"""The LED eyes: each state shows on the pins, speaking follows the voice's loudness."""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from companion.body.core import Body
from companion.body.eyes import parse_colour, rms_windows
from companion.body.settings import AmpSettings, EyeSettings, GpioSettings
from companion.messages import PlaybackChunk, SpokenAudio, State, StateChange
from companion.persona import LedColours
from companion.stages import EventBus

RATE = 16000


class FakeClock:
    def __init__(self, start: float = 50.0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t


class QuietLoop:
    muted = False

    def set_muted(self, muted: bool) -> None:
        self.muted = muted

    def set_talk_button(self, held: bool) -> None:
        pass


@pytest.fixture
def factory() -> MockFactory:
    f = MockFactory(pin_class=MockPWMPin)
    yield f
    f.reset()


def single_body(factory: MockFactory, clock: FakeClock, **eyes: object) -> tuple[Body, EventBus]:
    settings = GpioSettings(
        enabled=True,
        amp=AmpSettings(pin=None),
        eyes=EyeSettings(kind="single", pin=12, **eyes),  # type: ignore[arg-type]
    )
    body = Body(settings, factory, clock)
    bus = EventBus()
    body.attach(bus, QuietLoop())
    return body, bus


def rgb_body(factory: MockFactory, clock: FakeClock, common_anode: bool) -> tuple[Body, EventBus]:
    eyes = EyeSettings(kind="rgb", red=5, green=6, blue=13, common_anode=common_anode)
    body = Body(GpioSettings(enabled=True, amp=AmpSettings(pin=None), eyes=eyes), factory, clock)
    bus = EventBus()
    body.attach(bus, QuietLoop())
    return body, bus


def go(bus: EventBus, state: State, previous: State = State.IDLE) -> None:
    bus.publish(StateChange(state, previous, "default"))


def level_at(body: Body, factory: MockFactory, now: float, pin: int = 12) -> float:
    body.step(now)
    return float(factory.pin(pin).state)


def sine(seconds: float, rms: float, hz: float = 220.0) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    return (rms * math.sqrt(2) * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_listening_is_steady_full_brightness(factory: MockFactory) -> None:
    clock = FakeClock()
    body, bus = single_body(factory, clock)
    go(bus, State.LISTENING)
    assert [level_at(body, factory, clock.t + dt) for dt in (0.0, 0.37, 1.9)] == [1.0, 1.0, 1.0]
    body.close()


def test_idle_breathes_slowly_between_dim_and_half(factory: MockFactory) -> None:
    clock = FakeClock()
    body, bus = single_body(factory, clock)
    go(bus, State.LISTENING)
    go(bus, State.IDLE, State.LISTENING)
    t0 = clock.t
    assert level_at(body, factory, t0) == pytest.approx(0.05)
    assert level_at(body, factory, t0 + 1.0) == pytest.approx(0.225)
    assert level_at(body, factory, t0 + 2.0) == pytest.approx(0.4)
    assert level_at(body, factory, t0 + 4.0) == pytest.approx(0.05)
    body.close()


def test_thinking_pulses_faster_than_idle(factory: MockFactory) -> None:
    clock = FakeClock()
    body, bus = single_body(factory, clock)
    go(bus, State.THINKING)
    t0 = clock.t
    assert level_at(body, factory, t0) == pytest.approx(0.2)
    assert level_at(body, factory, t0 + 0.5) == pytest.approx(1.0)
    assert level_at(body, factory, t0 + 1.0) == pytest.approx(0.2)
    body.close()


def test_error_blinks(factory: MockFactory) -> None:
    clock = FakeClock()
    body, bus = single_body(factory, clock)
    go(bus, State.ERROR)
    t0 = clock.t
    assert [level_at(body, factory, t0 + dt) for dt in (0.1, 0.6, 1.1, 1.6)] == [1.0, 0.0, 1.0, 0.0]
    body.close()


def test_brightness_cap_scales_every_state(factory: MockFactory) -> None:
    clock = FakeClock()
    body, bus = single_body(factory, clock, brightness=0.5)
    go(bus, State.LISTENING)
    assert level_at(body, factory, clock.t) == pytest.approx(0.5)
    body.close()


def test_active_low_single_led_is_inverted(factory: MockFactory) -> None:
    clock = FakeClock()
    body, bus = single_body(factory, clock, active_high=False)
    go(bus, State.LISTENING)
    assert level_at(body, factory, clock.t) == 0.0
    go(bus, State.ERROR, State.LISTENING)
    assert level_at(body, factory, clock.t + 0.6) == 1.0
    body.close()


def test_speaking_brightness_follows_the_envelope_in_sync_with_playback(factory: MockFactory) -> None:
    clock = FakeClock()
    body, bus = single_body(factory, clock)
    go(bus, State.SPEAKING, State.THINKING)
    halfway_rms = 10 ** ((-45.0 + -12.0) / 2 / 20)  # -28.5 dBFS: halfway from quiet_db to loud_db
    samples = np.concatenate([np.zeros(RATE // 4, np.float32), sine(0.25, 0.35), sine(0.25, halfway_rms)])
    t0 = clock.t
    bus.publish(PlaybackChunk(SpokenAudio(samples, RATE, 1, 0), delay_s=0.2))
    floor = 0.1
    expected = [
        (0.1, floor),  # not heard yet: the speaker's queue
        (0.2 + 0.1, floor),  # silence at the start of the block
        (0.2 + 0.24, floor),  # still silence, just before the loud part
        (0.2 + 0.26, 1.0),  # loud part heard 0.45 s after it was handed over
        (0.2 + 0.49, 1.0),
        (0.2 + 0.51, 0.1 + 0.9 * 0.5),  # the quieter part, halfway in dB
        (0.2 + 0.74, 0.1 + 0.9 * 0.5),
        (0.2 + 0.80, floor),  # played out
    ]
    got = [(dt, level_at(body, factory, t0 + dt)) for dt, _ in expected]
    assert got == [(dt, pytest.approx(v, abs=0.01)) for dt, v in expected]
    body.close()


def test_rms_windows_are_25_ms() -> None:
    rms, window = rms_windows(sine(0.1, 0.25), RATE)
    assert window == 0.025
    assert len(rms) == 4
    assert rms == pytest.approx([0.25] * 4, abs=0.005)


def test_a_second_block_queued_behind_the_first_plays_after_it(factory: MockFactory) -> None:
    clock = FakeClock()
    body, bus = single_body(factory, clock)
    go(bus, State.SPEAKING, State.THINKING)
    t0 = clock.t
    bus.publish(PlaybackChunk(SpokenAudio(np.zeros(RATE // 2, np.float32), RATE, 1, 0), delay_s=0.1))
    bus.publish(PlaybackChunk(SpokenAudio(sine(0.5, 0.35), RATE, 1, 1), delay_s=0.6))
    assert level_at(body, factory, t0 + 0.4) == pytest.approx(0.1)
    assert level_at(body, factory, t0 + 0.8) == pytest.approx(1.0)
    body.close()


def test_muted_eyes_are_dim_while_listening(factory: MockFactory) -> None:
    clock = FakeClock()
    body, bus = single_body(factory, clock)
    loop = QuietLoop()
    body.attach(bus, loop)
    go(bus, State.LISTENING)
    loop.muted = True
    assert level_at(body, factory, clock.t) == pytest.approx(0.08)
    loop.muted = False
    assert level_at(body, factory, clock.t) == 1.0
    body.close()


@pytest.mark.parametrize(
    ("common_anode", "expected"),
    [
        (False, (0.0, 1.0, 0x60 / 255)),  # listening "#00ff60", pins high = lit
        (True, (1.0, 0.0, 1 - 0x60 / 255)),  # common anode: pins low = lit
    ],
)
def test_rgb_listening_colour_on_the_pins(
    factory: MockFactory, common_anode: bool, expected: tuple[float, float, float]
) -> None:
    clock = FakeClock()
    body, bus = rgb_body(factory, clock, common_anode)
    go(bus, State.LISTENING)
    body.step(clock.t)
    assert tuple(factory.pin(p).state for p in (5, 6, 13)) == pytest.approx(expected)
    body.close()
    off = 1.0 if common_anode else 0.0
    pins = [factory.pin(p) for p in (5, 6, 13)]
    assert all(off in [s.state for s in pin.states][-2:] for pin in pins)  # driven dark...
    assert [pin.function for pin in pins] == ["input"] * 3  # ...then released


def test_persona_colours_replace_the_defaults(factory: MockFactory) -> None:
    clock = FakeClock()
    body, bus = rgb_body(factory, clock, common_anode=False)
    body.set_colours(LedColours(thinking="#8000ff"))
    go(bus, State.THINKING)
    body.step(clock.t + 0.5)  # pulse peak
    assert tuple(factory.pin(p).state for p in (5, 6, 13)) == pytest.approx((0x80 / 255, 0.0, 1.0))
    body.close()


def test_a_bad_persona_colour_keeps_the_previous_one(factory: MockFactory, caplog) -> None:
    clock = FakeClock()
    body, bus = rgb_body(factory, clock, common_anode=False)
    body.set_colours(LedColours(listening="#0000ff"))
    body.set_colours(LedColours(listening="green-ish"))
    go(bus, State.LISTENING)
    body.step(clock.t)
    assert tuple(factory.pin(p).state for p in (5, 6, 13)) == (0.0, 0.0, 1.0)
    assert "leds.listening" in caplog.text
    body.close()


@pytest.mark.parametrize(
    ("text", "rgb"),
    [("#ff8000", (1.0, 0x80 / 255, 0.0)), ("#0f0", (0.0, 1.0, 0.0)), ("203040", (0x20 / 255, 0x30 / 255, 0x40 / 255))],
)
def test_parse_colour(text: str, rgb: tuple[float, float, float]) -> None:
    assert parse_colour(text) == pytest.approx(rgb)


def test_animation_thread_runs_on_its_own_and_stops_on_close(factory: MockFactory) -> None:
    settings = GpioSettings(enabled=True, amp=AmpSettings(pin=None), eyes=EyeSettings(kind="single", pin=12))
    body = Body(settings, factory)  # real clock
    bus = EventBus()
    body.attach(bus, QuietLoop())
    body.start()
    go(bus, State.ERROR)
    seen: set[float] = set()
    deadline = time.monotonic() + 5.0
    while len(seen) < 2 and time.monotonic() < deadline:
        seen.add(float(factory.pin(12).state))
        time.sleep(0.01)
    assert seen == {0.0, 1.0}  # it blinked without anyone calling step()
    assert "companion-body" in [t.name for t in threading.enumerate()]
    body.close()
    assert "companion-body" not in [t.name for t in threading.enumerate()]
    assert factory.pin(12).function == "input"
