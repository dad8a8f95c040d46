"""Opening the body: settings, simulated pins, and machines without GPIO."""

from __future__ import annotations

import glob
import logging
import warnings
from pathlib import Path

import numpy as np
import pytest
from gpiozero import Device, DigitalOutputDevice
from gpiozero.pins.mock import MockFactory, MockPWMPin

from companion.body.core import open_body
from companion.body.settings import GpioSettings
from companion.config import Config
from companion.messages import SpokenAudio, State, StateChange
from companion.persona import LedColours
from companion.settings import ConfigError, build, read_yaml
from companion.stages import EventBus


class NullSink:
    def begin(self, turn: int) -> None: ...
    def write(self, audio: SpokenAudio) -> float:
        return 0.0

    def end(self, turn: int) -> str:
        return ""

    def close(self) -> None: ...


class Loop:
    muted = False

    def set_muted(self, muted: bool) -> None: ...
    def set_talk_button(self, held: bool) -> None: ...


def test_gpio_off_means_no_body() -> None:
    assert open_body(GpioSettings()) is None


@pytest.mark.skipif(bool(glob.glob("/dev/gpiochip*")), reason="this machine has GPIO")
def test_no_gpio_gives_one_warning_and_a_body_that_does_nothing(monkeypatch, caplog) -> None:
    monkeypatch.setattr(Device, "pin_factory", None)  # let gpiozero look for the machine's pins
    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # gpiozero's own fallback warnings must not leak
        with caplog.at_level(logging.WARNING):
            body = open_body(GpioSettings(enabled=True))
    assert body is not None and not body.enabled
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1
    assert "GPIO disabled" in caplog.text
    bus, sink = EventBus(), NullSink()
    body.attach(bus, Loop())
    bus.publish(StateChange(State.SPEAKING, State.IDLE, "default"))
    assert body.wrap_sink(sink) is sink
    body.set_colours(LedColours(idle="#ffffff"))
    body.step()
    body.close()


def test_a_busy_pin_disables_the_body_instead_of_crashing(caplog) -> None:
    factory = MockFactory(pin_class=MockPWMPin)
    squatter = DigitalOutputDevice(13, pin_factory=factory)  # the blue eye pin
    with caplog.at_level(logging.WARNING):
        body = open_body(GpioSettings(enabled=True), pin_factory=factory)
    assert body is not None and not body.enabled
    assert "GPIO13" in (body.disabled_reason or "")
    body.close()
    squatter.close()
    factory.reset()


def test_mock_setting_runs_the_body_on_simulated_pins() -> None:
    body = open_body(GpioSettings(enabled=True, mock=True))
    assert body is not None and body.enabled
    sink = body.wrap_sink(NullSink())
    sink.begin(1)
    sink.write(SpokenAudio(np.zeros(160, np.float32), 16000, 1, 0))
    assert body.amp is not None and body.amp.is_on
    sink.close()
    body.close()


def gpio(data: dict) -> GpioSettings:
    return build(Config, {"gpio": data}, source="config.yaml").gpio


def test_gpio_section_loads_from_yaml_data() -> None:
    settings = gpio(
        {
            "enabled": True,
            "amp": {"pin": 16, "warmup_ms": 20},
            "eyes": {"kind": "rgb", "common_anode": True},
            "buttons": {"talk_pin": 17, "mute_pin": 27},
        }
    )
    assert settings.amp.pin == 16 and settings.eyes.common_anode and settings.buttons.mute_pin == 27
    assert settings.pins() == {
        "amp.pin": 16,
        "eyes.red": 5,
        "eyes.green": 6,
        "eyes.blue": 13,
        "buttons.talk_pin": 17,
        "buttons.mute_pin": 27,
    }


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"amp": {"pin": 5}}, "config.yaml: gpio: GPIO5 is used twice (amp.pin and eyes.red)"),
        ({"amp": {"pin": 40}}, "config.yaml: gpio.amp.pin: expected a BCM GPIO number from 0 to 27, got 40"),
        ({"eyes": {"kind": "rgbw"}}, "config.yaml: gpio.eyes.kind: expected one of 'rgb', 'single', 'none'"),
        ({"eyes": {"quiet_db": -10}}, "config.yaml: gpio.eyes: loud_db must be above quiet_db"),
        ({"buttons": {"talk": 17}}, "config.yaml: gpio.buttons.talk: unknown key; did you mean 'talk_pin'?"),
    ],
)
def test_bad_gpio_settings_name_the_key(data: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        gpio(data)
    assert str(info.value).startswith(message)


def test_single_led_frees_the_rgb_pins_for_buttons() -> None:
    settings = gpio({"eyes": {"kind": "single", "pin": 12}, "buttons": {"talk_pin": 5}})
    assert settings.pins()["buttons.talk_pin"] == 5


@pytest.mark.parametrize("name", ["gpio-rgb-eyes.yaml", "gpio-single-eyes.yaml"])
def test_hardware_example_snippets_load_and_open(name: str) -> None:
    path = Path(__file__).resolve().parent.parent / "hardware" / name
    settings = build(Config, read_yaml(path), source=str(path)).gpio
    assert settings.enabled
    factory = MockFactory(pin_class=MockPWMPin)
    body = open_body(settings, pin_factory=factory)
    assert body is not None and body.enabled
    body.close()
    factory.reset()
