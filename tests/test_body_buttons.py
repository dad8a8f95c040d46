"""Push-to-talk and mute buttons drive the voice loop."""

from __future__ import annotations

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from companion.body.core import Body
from companion.body.settings import AmpSettings, ButtonSettings, EyeSettings, GpioSettings
from companion.messages import State, StateChange
from companion.stages import EventBus

TALK, MUTE = 17, 27


class FakeLoop:
    def __init__(self) -> None:
        self.muted = False
        self.calls: list[tuple[str, bool]] = []

    def set_muted(self, muted: bool) -> None:
        self.calls.append(("muted", muted))
        self.muted = muted

    def set_talk_button(self, held: bool) -> None:
        self.calls.append(("talk", held))


@pytest.fixture
def factory() -> MockFactory:
    f = MockFactory(pin_class=MockPWMPin)
    yield f
    f.reset()


def make(factory: MockFactory, pull_up: bool = True) -> tuple[Body, FakeLoop, EventBus]:
    settings = GpioSettings(
        enabled=True,
        amp=AmpSettings(pin=None),
        eyes=EyeSettings(kind="single", pin=12),
        buttons=ButtonSettings(talk_pin=TALK, mute_pin=MUTE, pull_up=pull_up, bounce_ms=0),
    )
    body = Body(settings, factory, lambda: 0.0)
    loop, bus = FakeLoop(), EventBus()
    body.attach(bus, loop)
    return body, loop, bus


def test_talk_button_talks_while_held(factory: MockFactory) -> None:
    body, loop, _bus = make(factory)
    factory.pin(TALK).drive_low()  # pressed: the button shorts the pin to ground
    assert loop.calls == [("talk", True)]
    factory.pin(TALK).drive_high()
    assert loop.calls == [("talk", True), ("talk", False)]
    body.close()


def test_mute_button_toggles_listening(factory: MockFactory) -> None:
    body, loop, _bus = make(factory)
    pin = factory.pin(MUTE)
    pin.drive_low()
    pin.drive_high()
    assert loop.muted is True
    pin.drive_low()
    pin.drive_high()
    assert loop.calls == [("muted", True), ("muted", False)]
    body.close()


def test_mute_button_dims_the_eyes(factory: MockFactory) -> None:
    body, _loop, bus = make(factory)
    bus.publish(StateChange(State.LISTENING, State.IDLE, "default"))
    body.step(1.0)
    assert factory.pin(12).state == 1.0
    factory.pin(MUTE).drive_low()
    body.step(1.02)
    assert factory.pin(12).state == pytest.approx(0.08)
    body.close()


def test_buttons_wired_to_3v3_press_on_high(factory: MockFactory) -> None:
    body, loop, _bus = make(factory, pull_up=False)
    factory.pin(TALK).drive_high()
    factory.pin(TALK).drive_low()
    assert loop.calls == [("talk", True), ("talk", False)]
    body.close()


def test_a_loop_that_fails_to_react_does_not_break_the_button(factory: MockFactory, caplog) -> None:
    body, loop, _bus = make(factory)

    def broken(held: bool) -> None:
        raise RuntimeError("loop is restarting")

    loop.set_talk_button = broken  # type: ignore[method-assign]
    factory.pin(TALK).drive_low()
    assert "talk button" in caplog.text
    factory.pin(MUTE).drive_low()
    assert loop.muted is True
    body.close()


def test_close_releases_the_buttons(factory: MockFactory) -> None:
    body, loop, _bus = make(factory)
    body.close()
    factory.pin(TALK).drive_low()
    assert loop.calls == []
