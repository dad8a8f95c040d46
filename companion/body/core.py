"""The robot's body: amp, eyes and buttons on GPIO, driven by the voice loop's events.

Typical use (the daemon)::

    body = open_body(config.gpio)          # None when gpio.enabled is false
    if body:
        body.attach(bus, loop)              # events -> eyes, buttons -> loop
        body.set_colours(persona.leds)
        sink = body.wrap_sink(sink)         # amp on before the first sample
    ...
    body.close()                            # after the sink is closed

gpiozero is imported only here, when a body is opened; the pin factory is passed
in (None = gpiozero's default for the machine; tests pass a ``MockFactory``).
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from dataclasses import dataclass
from typing import Any, Protocol

from companion.body.amp import Amp, AmpSink, Sleep
from companion.body.eyes import Eyes
from companion.body.settings import GpioSettings
from companion.messages import Event, PlaybackChunk, State, StateChange
from companion.persona import LedColours
from companion.stages import AudioSink, Clock, EventBus

_log = logging.getLogger(__name__)


class LoopControls(Protocol):
    """What the buttons need from the voice loop."""

    @property
    def muted(self) -> bool: ...

    def set_muted(self, muted: bool) -> None: ...

    def set_talk_button(self, held: bool) -> None: ...


@dataclass
class _Devices:
    amp: Any = None
    eyes: Any = None
    talk: Any = None
    mute: Any = None

    def all(self) -> list[Any]:
        return [d for d in (self.talk, self.mute, self.eyes, self.amp) if d is not None]


class _RgbLed:
    """Three PWM LEDs as one RGB eye (like gpiozero's RGBLED, with a PWM frequency)."""

    def __init__(self, leds: list[Any]) -> None:
        self._leds = leds

    @property
    def value(self) -> tuple[float, ...]:
        return tuple(led.value for led in self._leds)

    @value.setter
    def value(self, rgb: tuple[float, float, float]) -> None:
        for led, v in zip(self._leds, rgb, strict=True):
            led.value = v

    def off(self) -> None:
        for led in self._leds:
            led.off()

    def close(self) -> None:
        for led in self._leds:
            led.close()


def _open_devices(settings: GpioSettings, factory: Any) -> _Devices:
    from gpiozero import PWMLED, Button, DigitalOutputDevice

    found = _Devices()
    try:
        if settings.amp.pin is not None:
            found.amp = DigitalOutputDevice(
                settings.amp.pin,
                active_high=settings.amp.active_high,
                initial_value=False,
                pin_factory=factory,
            )
        eyes = settings.eyes
        if eyes.kind == "single":
            found.eyes = PWMLED(eyes.pin, active_high=eyes.active_high, frequency=eyes.pwm_hz, pin_factory=factory)
        elif eyes.kind == "rgb":
            leds: list[Any] = []
            found.eyes = _RgbLed(leds)  # closed with the rest if a later pin fails
            for pin in (eyes.red, eyes.green, eyes.blue):
                leds.append(PWMLED(pin, active_high=not eyes.common_anode, frequency=eyes.pwm_hz, pin_factory=factory))
        buttons = settings.buttons
        bounce = buttons.bounce_ms / 1000.0 or None
        # we use no "held" events; a short hold_time keeps close() quick while a button is held
        # (gpiozero's hold thread otherwise delays closing by up to 1 s)
        common = {"pull_up": buttons.pull_up, "bounce_time": bounce, "pin_factory": factory}
        if buttons.talk_pin is not None:
            found.talk = Button(buttons.talk_pin, hold_time=0.1, **common)
        if buttons.mute_pin is not None:
            found.mute = Button(buttons.mute_pin, hold_time=0.1, **common)
    except BaseException:
        for device in found.all():
            device.close()
        raise
    return found


class Body:
    """Amp, eyes and buttons, with one named daemon thread animating the eyes.

    The thread (``companion-body``) renders a frame every ``eyes.frame_ms`` at the
    injected clock's time and switches the amp off when its idle time runs out. Tests
    skip :meth:`start` and call :meth:`step` after moving their clock.
    """

    def __init__(
        self,
        settings: GpioSettings,
        pin_factory: Any = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
        *,
        disabled_reason: str | None = None,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._sleep = sleep
        self.disabled_reason = disabled_reason
        self._devices = _Devices() if disabled_reason else _open_devices(settings, pin_factory)
        self.amp = Amp(self._devices.amp, settings.amp, clock) if self._devices.amp is not None else None
        self.eyes = Eyes(self._devices.eyes, settings.eyes)
        self._bus: EventBus | None = None
        self._loop: LoopControls | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False

    @classmethod
    def disabled(cls, settings: GpioSettings, reason: str) -> Body:
        """A body that does nothing (no GPIO here); every method is safe to call."""
        return cls(settings, disabled_reason=reason)

    @property
    def enabled(self) -> bool:
        return self.disabled_reason is None

    # ---- wiring ------------------------------------------------------------------

    def attach(self, bus: EventBus, loop: LoopControls) -> None:
        """Follow the loop's events and let the buttons drive it."""
        self._bus, self._loop = bus, loop
        bus.subscribe(self.on_event)
        self.eyes.muted = lambda: loop.muted
        if self._devices.talk is not None:
            self._devices.talk.when_pressed = lambda: self._call("talk", loop.set_talk_button, True)
            self._devices.talk.when_released = lambda: self._call("talk", loop.set_talk_button, False)
        if self._devices.mute is not None:
            self._devices.mute.when_pressed = lambda: self._call("mute", loop.set_muted, not loop.muted)

    @staticmethod
    def _call(button: str, method: Any, value: bool) -> None:
        _log.debug("%s button -> %s(%s)", button, getattr(method, "__name__", method), value)
        try:
            method(value)
        except Exception:
            _log.exception("%s button: the voice loop failed to react", button)

    def wrap_sink(self, inner: AudioSink) -> AudioSink:
        """The speaker, switching the amp on and off around replies (unchanged without an amp)."""
        if self.amp is None:
            return inner
        return AmpSink(inner, self.amp, self._sleep)

    def set_colours(self, colours: LedColours) -> None:
        self.eyes.set_colours(colours)

    def on_event(self, event: Event) -> None:
        if isinstance(event, StateChange):
            self.eyes.set_state(event.state, self._clock())
            if event.state == State.THINKING and self.amp is not None:
                # a reply is coming: warm the amp up while the LLM and TTS work, so the
                # first sample need not wait; it goes off again if no reply follows
                self.amp.acquire()
                self.amp.release()
        elif isinstance(event, PlaybackChunk):
            audio = event.audio
            self.eyes.envelope.add(audio.samples, audio.rate, self._clock() + event.delay_s)

    # ---- animation ---------------------------------------------------------------

    def step(self, now: float | None = None) -> None:
        """One frame: eyes rendered, amp switched off if idle long enough."""
        if not self.enabled:
            return
        now = self._clock() if now is None else now
        self.eyes.render(now)
        if self.amp is not None:
            self.amp.poll(now)

    def start(self) -> None:
        """Start the animation thread (no-op when disabled or already running)."""
        if not self.enabled or self._thread is not None or self._closed:
            return
        self._thread = threading.Thread(target=self._run, name="companion-body", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        frame = self.settings.eyes.frame_ms / 1000.0
        while not self._stop.wait(frame):
            try:
                self.step()
            except Exception:
                _log.exception("body animation failed; eyes stop here")
                return

    def close(self) -> None:
        """Stop the thread, switch the eyes and the amp off, release the pins."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        if self._bus is not None:
            self._bus.unsubscribe(self.on_event)
        self.eyes.off()
        if self.amp is not None:
            self.amp.off()
        for device in self._devices.all():
            try:
                device.close()
            except Exception:
                _log.exception("closing %r failed", device)


def _mock_factory() -> Any:
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    return MockFactory(pin_class=MockPWMPin)


def open_body(
    settings: GpioSettings, pin_factory: Any = None, clock: Clock = time.monotonic, sleep: Sleep = time.sleep
) -> Body | None:
    """Open and start the body; None when ``gpio.enabled`` is false.

    Without usable GPIO (not a Pi, no pin library, no permission, pin busy) this logs
    one warning and returns a disabled body instead of failing the daemon.
    """
    if not settings.enabled:
        return None
    if pin_factory is None and settings.mock:
        pin_factory = _mock_factory()
        _log.info("gpio.mock is on: the pins are simulated")
    try:
        from gpiozero import GPIOZeroError
    except ImportError as exc:
        _log.warning("GPIO disabled: gpiozero is not installed (%s)", exc)
        return Body.disabled(settings, f"gpiozero missing: {exc}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # gpiozero warns once per pin library it could not load
            body = Body(settings, pin_factory, clock, sleep)
    except (GPIOZeroError, OSError, RuntimeError, ImportError) as exc:
        reason = f"{type(exc).__name__}: {exc}"
        _log.warning("GPIO disabled, running without amp, eyes and buttons: %s", reason)
        return Body.disabled(settings, reason)
    body.start()
    _log.info("body ready: %s", ", ".join(f"{k}=GPIO{v}" for k, v in settings.pins().items()) or "no pins")
    return body
