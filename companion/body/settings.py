"""GPIO settings (the ``gpio:`` section of config.yaml).

Pin numbers are BCM GPIO numbers (``GPIO16``), not header positions. The default
pin map (see ``hardware/README.md``) leaves GPIO 18-21 free for I2S audio.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from companion.settings import between, non_negative, positive, setting

I2S_PINS = (18, 19, 20, 21)
"""BCLK, LRCLK, DIN (mic data), DOUT (amp data) on a Raspberry Pi."""


def bcm_pin(value: Any) -> str | None:
    if not 0 <= value <= 27:
        return f"expected a BCM GPIO number from 0 to 27, got {value!r}"
    return None


@dataclass(frozen=True)
class AmpSettings:
    pin: int | None = setting(26, check=bcm_pin, doc="amp enable pin (MAX98357A SD); null = no amp control")
    active_high: bool = setting(True, doc="true: pin high switches the amp on")
    warmup_ms: int = setting(50, check=non_negative, doc="amp on at least this long before the first sample")
    idle_off_s: float = setting(2.0, check=non_negative, doc="amp off this long after a reply has played")


@dataclass(frozen=True)
class EyeSettings:
    kind: Literal["rgb", "single", "none"] = setting(
        "rgb", doc="rgb: an RGB LED (pair) on red/green/blue; single: one PWM pin; none"
    )
    pin: int = setting(12, check=bcm_pin, doc="single: the PWM pin of the eye LED pair")
    active_high: bool = setting(True, doc="single: true when the pin drives the LED anode")
    red: int = setting(5, check=bcm_pin, doc="rgb: red pin")
    green: int = setting(6, check=bcm_pin, doc="rgb: green pin")
    blue: int = setting(13, check=bcm_pin, doc="rgb: blue pin")
    common_anode: bool = setting(False, doc="rgb: true when the LED's common leg goes to 3.3 V")
    brightness: float = setting(1.0, check=between(0, 1), doc="overall brightness cap")
    pwm_hz: int = setting(200, check=positive, doc="PWM frequency")
    frame_ms: int = setting(20, check=between(5, 200), doc="animation frame time")
    muted_level: float = setting(0.08, check=between(0, 1), doc="brightness while muted")
    quiet_db: float = setting(-45.0, check=between(-120, 0), doc="speaking: this loudness (dBFS) is dimmest")
    loud_db: float = setting(-12.0, check=between(-120, 0), doc="speaking: this loudness (dBFS) is brightest")

    def __post_init__(self) -> None:
        if self.loud_db <= self.quiet_db:
            raise ValueError("loud_db must be above quiet_db")


@dataclass(frozen=True)
class ButtonSettings:
    talk_pin: int | None = setting(None, check=bcm_pin, doc="push-to-talk button (talk while held)")
    mute_pin: int | None = setting(None, check=bcm_pin, doc="mute button (toggles listening)")
    pull_up: bool = setting(True, doc="true: buttons connect the pin to ground (internal pull-up)")
    bounce_ms: int = setting(30, check=non_negative, doc="debounce time")


@dataclass(frozen=True)
class GpioSettings:
    enabled: bool = setting(False, doc="drive real pins (false: no GPIO); pins are BCM numbers")
    mock: bool = setting(False, doc="simulate the pins (gpiozero MockFactory), for trying")
    amp: AmpSettings = field(default_factory=AmpSettings, metadata={"doc": "speaker amplifier enable"})
    eyes: EyeSettings = field(default_factory=EyeSettings, metadata={"doc": "LED eyes"})
    buttons: ButtonSettings = field(default_factory=ButtonSettings, metadata={"doc": "optional buttons"})

    def pins(self) -> dict[str, int]:
        """The pins in use, by role."""
        used: dict[str, int] = {}
        if self.amp.pin is not None:
            used["amp.pin"] = self.amp.pin
        if self.eyes.kind == "single":
            used["eyes.pin"] = self.eyes.pin
        elif self.eyes.kind == "rgb":
            for colour in ("red", "green", "blue"):
                used[f"eyes.{colour}"] = getattr(self.eyes, colour)
        if self.buttons.talk_pin is not None:
            used["buttons.talk_pin"] = self.buttons.talk_pin
        if self.buttons.mute_pin is not None:
            used["buttons.mute_pin"] = self.buttons.mute_pin
        return used

    def __post_init__(self) -> None:
        seen: dict[int, str] = {}
        for role, pin in self.pins().items():
            if pin in seen:
                raise ValueError(f"GPIO{pin} is used twice ({seen[pin]} and {role})")
            seen[pin] = role
