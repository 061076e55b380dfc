"""Night-to-day conversion with the Gemini API (google-genai), one image at a time per worker.

Per image, the reference pipeline's three steps: (1) the image model is asked for the same
scene in daylight; (2) a text model is asked whether stars remain (HAS_STARS / NO_STARS);
(3) if they do, one correction request to the image model. Every request waits for the shared
:class:`~data_prep.converters.rate_limit.RequestPacer`; transient failures (408, 429, 5xx,
timeouts, dropped connections) are retried with exponential backoff and jitter, honouring the
server's Retry-After; blocked content is never retried; answers without an image are retried
up to ``max_no_image_retries`` times. The SDK's own retries are switched off so this policy is
the only one. A rejected key or an unknown model raises :class:`FatalAPIError`, which stops the
whole run instead of failing every image in turn. The interpretation of responses is pure
(:func:`interpret_image_response`, :func:`parse_star_answer`) and unit-tested directly.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import logging
import random
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from google import genai
from google.genai import errors, types
from PIL import Image, UnidentifiedImageError

from data_prep.converters.rate_limit import (
    RequestPacer,
    backoff_delay,
    is_retryable_status,
    retry_after_seconds,
)

log = logging.getLogger(__name__)

API_KEY_VARIABLES = ("GEMINI_API_KEY", "GOOGLE_API_KEY")

# Finish reasons that mean "the model refused", as opposed to "it answered without an image".
BLOCKING_FINISH_REASONS = frozenset({
    "SAFETY", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "RECITATION", "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", "MODEL_ARMOR",
})


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


class MissingAPIKeyError(RuntimeError):
    pass


class FatalAPIError(RuntimeError):
    """An error no other image would escape (key rejected, model not found): stop the run."""


class RequestFailed(RuntimeError):
    """A request that did not succeed within the retry policy."""


class Stopped(RuntimeError):
    """The run is stopping (fatal error elsewhere, or interrupted): send nothing more."""


@dataclass(frozen=True)
class Prompts:
    day: str
    check: str
    correct: str


@dataclass(frozen=True)
class GeminiSettings:
    prompts: Prompts
    image_model: str = "gemini-2.5-flash-image"
    check_model: str = "gemini-2.5-flash"
    base_url: str | None = None
    api_version: str | None = None
    response_modalities: tuple[str, ...] = ("TEXT", "IMAGE")
    check_stars: bool = True
    concurrency: int = 4
    rpm: float | None = 10
    request_timeout_s: float = 120.0
    max_attempts: int = 5  # per request, for transient errors
    backoff_initial_s: float = 2.0
    backoff_max_s: float = 60.0
    max_no_image_retries: int = 2

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"converter.concurrency must be >= 1, got {self.concurrency}")
        if self.max_attempts < 1:
            raise ValueError(f"converter.max_attempts must be >= 1, got {self.max_attempts}")
        if self.max_no_image_retries < 0:
            raise ValueError("converter.max_no_image_retries must be >= 0, "
                             f"got {self.max_no_image_retries}")

    @property
    def prompt_hash(self) -> str:
        """Identifies what was asked (models and prompts), recorded per image."""
        text = "\x1f".join([self.image_model, self.check_model, self.prompts.day,
                            self.prompts.check if self.check_stars else "",
                            self.prompts.correct if self.check_stars else ""])
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def settings_from_config(cfg: Any) -> GeminiSettings:
    """Build settings from the ``converter`` config group (see conf/converter/gemini.yaml)."""
    return GeminiSettings(
        prompts=Prompts(day=str(cfg.prompts.day), check=str(cfg.prompts.check),
                        correct=str(cfg.prompts.correct)),
        image_model=str(cfg.image_model),
        check_model=str(cfg.check_model),
        base_url=cfg.base_url or None,
        api_version=cfg.api_version or None,
        response_modalities=tuple(str(m) for m in cfg.response_modalities),
        check_stars=bool(cfg.check_stars),
        concurrency=int(cfg.concurrency),
        rpm=float(cfg.rpm) if cfg.rpm else None,
        request_timeout_s=float(cfg.request_timeout_s),
        max_attempts=int(cfg.max_attempts),
        backoff_initial_s=float(cfg.backoff_initial_s),
        backoff_max_s=float(cfg.backoff_max_s),
        max_no_image_retries=int(cfg.max_no_image_retries),
    )


def api_key_from_env(environ: Mapping[str, str]) -> str:
    """The API key from GOOGLE_API_KEY or GEMINI_API_KEY (GOOGLE_API_KEY first, as the SDK)."""
    key = environ.get("GOOGLE_API_KEY") or environ.get("GEMINI_API_KEY")
    if not key:
        raise MissingAPIKeyError(
            "converter=gemini needs an API key in the environment variable GEMINI_API_KEY or "
            "GOOGLE_API_KEY (it is never read from the config or the command line). "
            "Without a key, use converter=local (offline day-styling) or converter=none.")
    return key


def make_client(api_key: str, settings: GeminiSettings) -> genai.Client:
    """A Gemini API client with the SDK's retries off (our policy is the only one)."""
    options = types.HttpOptions(
        base_url=settings.base_url,
        api_version=settings.api_version,
        timeout=int(settings.request_timeout_s * 1000),
        retry_options=types.HttpRetryOptions(attempts=1),
    )
    return genai.Client(api_key=api_key, vertexai=False, http_options=options)


def redactor(secret: str) -> Callable[[str], str]:
    """A function that removes ``secret`` from any text before it is logged or written."""
    def redact(text: str) -> str:
        return text.replace(secret, "[redacted]") if secret else text
    return redact


# --- pure interpretation of responses -------------------------------------------------------


@dataclass(frozen=True)
class ImageAnswer:
    kind: str  # image | blocked | no_image
    data: bytes | None = None
    mime_type: str | None = None
    reason: str = ""


def _enum_name(value: Any) -> str:
    if value is None:
        return ""
    return str(getattr(value, "value", value))


def interpret_image_response(response: types.GenerateContentResponse) -> ImageAnswer:
    """Classify an image-model answer: the final (non-thought) image, a refusal, or no image."""
    feedback = response.prompt_feedback
    block = _enum_name(feedback.block_reason) if feedback is not None else ""
    candidates = response.candidates or []
    if not candidates:
        if block:
            return ImageAnswer("blocked", reason=f"prompt blocked: {block}")
        return ImageAnswer("no_image", reason="no candidates in the answer")
    candidate = candidates[0]
    finish = _enum_name(candidate.finish_reason)
    parts = (candidate.content.parts if candidate.content is not None else None) or []
    final = None
    texts = []
    for part in parts:
        if part.thought:
            continue  # intermediate "thinking" images are not the answer
        inline = part.inline_data
        if inline is not None and inline.data and (inline.mime_type or "").startswith("image/"):
            final = inline  # the last image part is the final one
        elif part.text:
            texts.append(part.text.strip())
    if final is not None:
        return ImageAnswer("image", data=final.data, mime_type=final.mime_type,
                           reason=f"finish {finish}" if finish else "")
    if finish in BLOCKING_FINISH_REASONS or block:
        return ImageAnswer("blocked", reason=f"finish reason {finish or block}")
    text = " ".join(texts)
    reason = f"no image (finish {finish or 'unknown'})"
    if text:
        reason += f"; text: {text[:120]!r}"
    return ImageAnswer("no_image", reason=reason)


def parse_star_answer(text: str | None) -> bool | None:
    """True for HAS_STARS, False for NO_STARS, None when the answer is neither or both."""
    upper = (text or "").upper()
    has, none = "HAS_STARS" in upper, "NO_STARS" in upper
    if has == none:
        return None
    return has


def response_text(response: types.GenerateContentResponse) -> str:
    texts = []
    for candidate in response.candidates or []:
        for part in (candidate.content.parts if candidate.content else None) or []:
            if part.text and not part.thought:
                texts.append(part.text)
    return " ".join(texts)


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
                    "check GEMINI_API_KEY / GOOGLE_API_KEY")
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
