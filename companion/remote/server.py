"""``companion serve --wyoming tcp://HOST:PORT``: the persona voices as a Wyoming TTS service.

``describe`` lists each persona as a voice (its file name; the display name as the
description). ``synthesize`` (or the streaming ``synthesize-start`` / ``-chunk`` /
``-stop``) speaks the text the way ``companion say`` does: the persona's style
transform (:func:`companion.script.prepare`), then its Piper or XTTS voice with voice
match and effects, from the voices of a :class:`~companion.control.tts_backend.TtsBackend`.
A request whose ``context`` says the text is already styled (a companion robot
sends that) is spoken as it is.

Wyoming has no authentication: the server listens on loopback unless told otherwise
and warns when it binds anywhere else.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from companion.audio.io import to_int16
from companion.persona import Persona, list_personas, load_persona
from companion.remote.wyoming_io import parse_tcp_uri
from companion.script import prepare
from companion.sentences import SentenceSplitter

if TYPE_CHECKING:
    from companion.control.tts_backend import TtsBackend

_log = logging.getLogger(__name__)

CHUNK_SAMPLES = 2048


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _styled(context: Any) -> bool:
    return isinstance(context, dict) and bool((context.get("companion") or {}).get("styled"))


class VoiceService:
    """What the Wyoming handler needs: voice names, and speech for (voice, text)."""

    def __init__(self, backend: TtsBackend) -> None:
        self.backend = backend
        self.config = backend.config

    def voices(self) -> list[tuple[str, Persona]]:
        out = []
        for key in sorted(list_personas(self.config.personas_dir)):
            try:
                out.append((key, load_persona(key, self.config.personas_dir)))
            except Exception as exc:  # a broken persona file is left out, not fatal
                _log.warning("persona %s left out of the voices: %s", key, exc)
        return out

    def info(self) -> Any:
        from wyoming.info import Attribution, Info, TtsProgram, TtsVoice

        by = Attribution(name="companion", url="https://github.com/")
        voices = [
            TtsVoice(
                name=key,
                description=p.description or p.name,
                attribution=by,
                installed=True,
                version=None,
                languages=[p.voice.language],
            )
            for key, p in self.voices()
        ]
        program = TtsProgram(
            name="companion",
            description="companion persona voices (style transform, voice match, effects)",
            attribution=by,
            installed=True,
            version=None,
            voices=voices,
            supports_synthesize_streaming=True,
        )
        return Info(tts=[program])

    def persona(self, voice: str | None) -> Persona:
        if not voice or voice == self.backend.persona_key:
            return self.backend.persona
        known = list_personas(self.config.personas_dir)
        if voice not in known:
            raise ValueError(f"unknown voice {voice!r} (voices: {', '.join(sorted(known))})")
        return load_persona(voice, self.config.personas_dir)

    def speak(self, voice: str | None, text: str, styled: bool) -> tuple[int, Iterator[np.ndarray]]:
        """(sample rate, int16 blocks) of ``text`` said by the persona named ``voice``."""
        persona = self.persona(voice)
        synth = self.backend.voice_for(persona)
        script = prepare(persona, text, raw=styled)

        def blocks() -> Iterator[np.ndarray]:
            for sentence in script.spoken:
                for block in synth.synthesize(sentence):
                    pcm = to_int16(block)
                    for i in range(0, len(pcm), CHUNK_SAMPLES):
                        yield pcm[i : i + CHUNK_SAMPLES]

        return synth.sample_rate, blocks()


def _handler_class() -> Any:
    from wyoming.audio import AudioChunk, AudioStart, AudioStop
    from wyoming.error import Error
    from wyoming.event import Event
    from wyoming.info import Describe
    from wyoming.server import AsyncEventHandler
    from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeStopped

    class Handler(AsyncEventHandler):
        def __init__(self, service: VoiceService, *args: Any) -> None:
            super().__init__(*args)
            self.service = service
            self.stream: dict[str, Any] | None = None

        async def handle_event(self, event: Event) -> bool:
            try:
                if Describe.is_type(event.type):
                    await self.write_event(self.service.info().event())
                elif Synthesize.is_type(event.type):
                    if self.stream is None:  # inside a stream it is only the compatibility copy
                        req = Synthesize.from_event(event)
                        await self._speak(req.voice.name if req.voice else None, req.text, _styled(req.context))
                elif SynthesizeStart.is_type(event.type):
                    start = SynthesizeStart.from_event(event)
                    name = start.voice.name if start.voice else None
                    self.service.persona(name)  # an unknown voice fails now, not at the first sentence
                    self.stream = {"voice": name, "styled": _styled(start.context), "split": SentenceSplitter()}
                elif SynthesizeChunk.is_type(event.type) and self.stream is not None:
                    for sentence in self.stream["split"].feed(SynthesizeChunk.from_event(event).text):
                        await self._speak(self.stream["voice"], sentence, self.stream["styled"])
                elif SynthesizeStop.is_type(event.type) and self.stream is not None:
                    stream, self.stream = self.stream, None
                    for sentence in stream["split"].flush():
                        await self._speak(stream["voice"], sentence, stream["styled"])
                    await self.write_event(SynthesizeStopped().event())
            except (ValueError, KeyError, TypeError) as exc:
                await self.write_event(Error(text=str(exc), code=type(exc).__name__).event())
                self.stream = None
            return True

        async def _speak(self, voice: str | None, text: str, styled: bool) -> None:
            loop = asyncio.get_running_loop()
            rate, blocks = await loop.run_in_executor(None, self.service.speak, voice, text, styled)
            fmt = {"rate": rate, "width": 2, "channels": 1}
            await self.write_event(AudioStart(**fmt).event())
            end = object()
            while (block := await loop.run_in_executor(None, next, blocks, end)) is not end:
                assert isinstance(block, np.ndarray)
                await self.write_event(AudioChunk(audio=block.tobytes(), **fmt).event())
            await self.write_event(AudioStop().event())

    return Handler


class WyomingVoiceServer:
    """The Wyoming server on its own asyncio thread; :meth:`start` returns once it listens."""

    def __init__(self, backend: TtsBackend, uri: str, *, zeroconf: str | None = None) -> None:
        self.host, self.port = parse_tcp_uri(uri, key="--wyoming")
        self.service = VoiceService(backend)
        self.zeroconf = zeroconf
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None

    @property
    def uri(self) -> str:
        return f"tcp://{self.host}:{self.port}"

    def start(self) -> None:
        if not is_loopback(self.host):
            _log.warning(
                "Wyoming has no authentication: anyone who can reach %s can make this voice say anything. "
                "Bind to 127.0.0.1 unless the network is yours (see README, 'Running with a bigger machine')",
                self.uri,
            )
        self._thread = threading.Thread(target=self._run, name="companion-wyoming", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        handler = _handler_class()
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()

        async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await handler(self.service, reader, writer).run()

        server = await asyncio.start_server(on_client, self.host, self.port)
        self.port = server.sockets[0].getsockname()[1]
        if self.zeroconf:
            await self._advertise()
        self._ready.set()
        _log.info("wyoming voices on %s", self.uri)
        async with server:
            await self._stop.wait()

    async def _advertise(self) -> None:
        from wyoming.zeroconf import HomeAssistantZeroconf

        host = None if self.host in ("0.0.0.0", "::", "") else self.host
        zc = HomeAssistantZeroconf(port=self.port, name=self.zeroconf, host=host)
        await zc.register_server()
        _log.info("advertised as %s._wyoming._tcp.local. (zeroconf)", self.zeroconf)

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=10)
