"""What a Gemini answer says: the day image, a refusal, no image; stars or none. Pure.

:func:`interpret_image_response` classifies an image-model answer (the final, non-thought image
part; a block or safety finish reason is a refusal, never retried; anything else without an
image is ``no_image``, retried up to ``max_no_image_retries``); :func:`parse_star_answer`
reads the check model's HAS_STARS / NO_STARS. Unit-tested directly on SDK response objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from google.genai import types

# Finish reasons that mean "the model refused", as opposed to "it answered without an image".
BLOCKING_FINISH_REASONS = frozenset({
    "SAFETY", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "RECITATION", "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", "MODEL_ARMOR",
})


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
