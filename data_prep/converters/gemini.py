"""Night-to-day conversion of one image with the Gemini API (google-genai), thread-safe.

Per image, the reference pipeline's three steps: (1) the image model is asked for the same
scene in daylight; (2) a text model is asked whether stars remain (HAS_STARS / NO_STARS);
(3) if they do, one correction request to the image model. Every request waits for the shared
:class:`~data_prep.converters.rate_limit.RequestPacer`; transient failures (408, 429, 5xx,
timeouts, dropped connections) are retried with exponential backoff and jitter, honouring the
server's Retry-After; blocked content is never retried; answers without an image are retried
up to ``max_no_image_retries`` times. The SDK's own retries are switched off so this policy is
the only one. A rejected key or an unknown model raises :class:`FatalAPIError`, which stops the
whole run instead of failing every image in turn. Settings and the API key:
:mod:`.gemini_settings`; reading the answers (pure): :mod:`.gemini_answers`; many images at
once under one request budget: :mod:`.gemini_run`.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from google import genai
from google.genai import errors, types
from PIL import Image, UnidentifiedImageError

from data_prep.converters.gemini_answers import (
    ImageAnswer,
    interpret_image_response,
    parse_star_answer,
    response_text,
)
from data_prep.converters.gemini_settings import API_KEY_VARIABLES_TEXT, GeminiSettings
from data_prep.converters.rate_limit import (
    RequestPacer,
    backoff_delay,
    is_retryable_status,
    retry_after_seconds,
)

log = logging.getLogger(__name__)


def _transport_errors() -> tuple[type[BaseException], ...]:
    # The SDK sends with httpx or its fork httpx2, whichever is installed; their timeouts and
    # dropped connections are distinct classes.
    classes = []
    for module_name in ("httpx", "httpx2"):
        try:
            classes.append(importlib.import_module(module_name).TransportError)
        except ImportError:
            continue
    return tuple(classes)


TRANSPORT_ERRORS = _transport_errors()


class FatalAPIError(RuntimeError):
    """An error no other image would escape (key rejected, model not found): stop the run."""


class RequestFailed(RuntimeError):
    """A request that did not succeed within the retry policy."""


class Stopped(RuntimeError):
    """The run is stopping (fatal error elsewhere, or interrupted): send nothing more."""


def make_client(api_key: str, settings: GeminiSettings) -> genai.Client:
    """A Gemini API client with the SDK's retries off (our policy is the only one)."""
    options = types.HttpOptions(
        base_url=settings.base_url,
        api_version=settings.api_version,
        timeout=int(settings.request_timeout_s * 1000),
        retry_options=types.HttpRetryOptions(attempts=1),
    )
    return genai.Client(api_key=api_key, vertexai=False, http_options=options)




# --- the converter ----------------------------------------------------------------------------


@dataclass
class Conversion:
    status: str  # done | blocked | failed | stopped (sent nothing more: the run is stopping)
    image: Image.Image | None = None
    fatal: str | None = None  # set when the error stops the whole run
    label: str = ""  # the image's name, for log lines
    requests: int = 0
    verified: bool = False
    corrected: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        return "; ".join(self.notes)


def to_png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


class GeminiDayConverter:
    """Converts one night image per :meth:`convert` call; safe to call from many threads."""

    def __init__(self, client: genai.Client, settings: GeminiSettings, pacer: RequestPacer,
                 stop: threading.Event, redact: Callable[[str], str] = lambda s: s,
                 rng: random.Random | None = None):
        self.client = client
        self.settings = settings
        self.pacer = pacer
        self.stop = stop
        self.redact = redact
        self._rng = rng or random.Random()
        self._rng_lock = threading.Lock()
        # At most `concurrency` requests in flight, however many workers prepare images.
        self._in_flight = threading.BoundedSemaphore(settings.concurrency)

    @contextlib.contextmanager
    def _request_slot(self) -> Iterator[None]:
        while not self._in_flight.acquire(timeout=0.1):
            if self.stop.is_set():
                raise Stopped("run stopping")
        try:
            if self.stop.is_set():
                raise Stopped("run stopping")
            yield
        finally:
            self._in_flight.release()

    def _jitter(self, retry: int) -> float:
        with self._rng_lock:
            return backoff_delay(retry, self.settings.backoff_initial_s,
                                 self.settings.backoff_max_s, self._rng)

    def _wait(self, seconds: float) -> None:
        if self.stop.wait(seconds):
            raise Stopped("run stopping")

    def _send(self, conversion: Conversion, what: str, model: str, contents: list,
              config: types.GenerateContentConfig) -> types.GenerateContentResponse:
        """One logical request, retried on transient failures; counts every HTTP request."""
        s = self.settings
        for attempt in range(1, s.max_attempts + 1):
            try:
                with self._request_slot():
                    if not self.pacer.acquire(self.stop):
                        raise Stopped("run stopping")
                    conversion.requests += 1
                    try:
                        return self.client.models.generate_content(
                            model=model, contents=contents, config=config)
                    except errors.APIError as exc:
                        fatal = self._fatal_message(exc, what)
                        if fatal is not None:
                            self.stop.set()  # before the slot is free for another request
                            raise FatalAPIError(fatal) from None
                        raise
            except errors.APIError as exc:
                code, status = exc.code, exc.status or ""
                message = self.redact(str(exc.message or ""))
                failure = f"{what}: HTTP {code} {status}: {message}".rstrip(": ")
                if not is_retryable_status(code) or attempt == s.max_attempts:
                    raise RequestFailed(
                        failure + (f" (after {attempt} attempts)" if attempt > 1 else "")) from None
                headers = getattr(exc.response, "headers", None)
                server_wait = retry_after_seconds(headers, exc.details)
                if server_wait is not None:
                    with self._rng_lock:
                        delay = server_wait + self._rng.uniform(0.0, 0.1 * max(server_wait, 0.1))
                else:
                    delay = self._jitter(attempt)
            except TRANSPORT_ERRORS as exc:
                failure = f"{what}: {type(exc).__name__}: {self.redact(str(exc))}"
                if attempt == s.max_attempts:
                    raise RequestFailed(f"{failure} (after {attempt} attempts)") from None
                delay = self._jitter(attempt)
            log.info("%s: %s; retry %d/%d in %.2f s", conversion.label, failure, attempt,
                     s.max_attempts - 1, delay)
            self._wait(delay)
        raise AssertionError("unreachable")  # the loop returns or raises

    def _fatal_message(self, exc: errors.APIError, what: str) -> str | None:
        """The message for an error that no other request would escape, else None."""
        code, status = exc.code, exc.status or ""
        message, details = self.redact(str(exc.message or "")), str(exc.details)
        if code in (401, 403) or (code == 400 and (
                "API_KEY_INVALID" in details or "API key not valid" in details)):
            return (f"the Gemini API rejected the API key (HTTP {code} {status}: {message}); "
                    f"check {API_KEY_VARIABLES_TEXT}")
        if code == 404:
            return (f"model or endpoint not found for {what} (HTTP 404: {message}); check "
                    "converter.image_model, converter.check_model, converter.base_url and "
                    "converter.api_version")
        return None

    def _ask_image(self, conversion: Conversion, what: str, image_png: bytes, prompt: str,
                   size: tuple[int, int]) -> Image.Image | None:
        """An image from the image model at ``size``; None with conversion.status set when the
        answer was a refusal or never contained an image."""
        s = self.settings
        config = types.GenerateContentConfig(
            response_modalities=list(s.response_modalities),
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True))
        contents = [types.Part.from_bytes(data=image_png, mime_type="image/png"), prompt]
        for attempt in range(s.max_no_image_retries + 1):
            answer = interpret_image_response(
                self._send(conversion, what, s.image_model, contents, config))
            if answer.kind == "blocked":
                conversion.status = "blocked"
                conversion.notes.append(f"{what}: {self.redact(answer.reason)}")
                return None
            if answer.kind == "image":
                try:
                    image = Image.open(io.BytesIO(answer.data))
                    image.load()
                except (UnidentifiedImageError, OSError) as exc:
                    answer = ImageAnswer("no_image", reason=f"undecodable image ({exc})")
                else:
                    image = image.convert("RGB")
                    if image.size != size:
                        conversion.notes.append(
                            f"{what}: resized {image.size[0]}x{image.size[1]} -> "
                            f"{size[0]}x{size[1]}")
                        image = image.resize(size, Image.Resampling.LANCZOS)
                    return image
            log.info("%s: %s: %s (%d/%d)", conversion.label, what, self.redact(answer.reason),
                     attempt + 1, s.max_no_image_retries + 1)
            last = answer.reason
        conversion.status = "failed"
        conversion.notes.append(
            f"{what}: no image after {s.max_no_image_retries + 1} answers ({self.redact(last)})")
        return None

    def convert(self, night_png: bytes, size: tuple[int, int], label: str = "") -> Conversion:
        """Run the three steps for one image; every outcome, including a fatal error (which the
        caller turns into stopping the run), ends in the returned Conversion."""
        s = self.settings
        conversion = Conversion(status="done", label=label)
        try:
            day = self._ask_image(conversion, "day request", night_png, s.prompts.day, size)
            if day is None:
                return conversion
            if s.check_stars:
                check = self._send(conversion, "star check", s.check_model,
                                   [types.Part.from_bytes(data=to_png(day), mime_type="image/png"),
                                    s.prompts.check],
                                   types.GenerateContentConfig(
                                       automatic_function_calling=types.
                                       AutomaticFunctionCallingConfig(disable=True)))
                has_stars = parse_star_answer(response_text(check))
                if has_stars is None:
                    conversion.notes.append("star check answer unclear: "
                                            f"{self.redact(response_text(check))[:80]!r}")
                else:
                    conversion.verified = True
                if has_stars:
                    corrected = self._ask_image(conversion, "correction", to_png(day),
                                                s.prompts.correct, size)
                    if corrected is None:
                        return conversion
                    day, conversion.corrected = corrected, True
        except RequestFailed as exc:
            conversion.status = "failed"
            conversion.notes.append(str(exc))
            return conversion
        except FatalAPIError as exc:
            conversion.status, conversion.fatal = "failed", str(exc)
            conversion.notes.append(str(exc))
            return conversion
        except Stopped:
            conversion.status = "stopped"
            conversion.notes.append("not finished: the run was stopped")
            return conversion
        conversion.image = day
        return conversion
