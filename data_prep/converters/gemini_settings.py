"""What ``converter=gemini`` is configured with: its settings, and where its API key comes from.

The key is read only from the environment (:data:`API_KEY_VARIABLES`, the one place that names
them); it is never a config value, so it never reaches a saved config, a log or the manifest,
and :func:`redactor` removes it from any text before that text is logged or written. No
google-genai import here: the step reads these without loading the SDK.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# The environment variables holding the API key, in the SDK's order: GOOGLE_API_KEY wins when
# both are set. Messages name GEMINI_API_KEY first, the name Google's Gemini docs use.
API_KEY_VARIABLES = ("GOOGLE_API_KEY", "GEMINI_API_KEY")
API_KEY_VARIABLES_TEXT = " or ".join(reversed(API_KEY_VARIABLES))


class MissingAPIKeyError(RuntimeError):
    """``converter=gemini`` without a key in the environment; the message says where to put it."""


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


def find_api_key(environ: Mapping[str, str]) -> str | None:
    """The API key from the first of :data:`API_KEY_VARIABLES` that is set, else None."""
    return next((environ[name] for name in API_KEY_VARIABLES if environ.get(name)), None)


def api_key_from_env(environ: Mapping[str, str]) -> str:
    """The API key (:func:`find_api_key`); MissingAPIKeyError naming the variables without one."""
    key = find_api_key(environ)
    if not key:
        raise MissingAPIKeyError(
            f"converter=gemini needs an API key in the environment variable "
            f"{API_KEY_VARIABLES_TEXT} (it is never read from the config or the command line). "
            "Without a key, use converter=local (offline day-styling) or converter=none.")
    return key


def redactor(secret: str) -> Callable[[str], str]:
    """A function that removes ``secret`` from any text before it is logged or written."""
    def redact(text: str) -> str:
        return text.replace(secret, "[redacted]") if secret else text
    return redact
