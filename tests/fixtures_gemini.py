"""A stand-in for the Gemini API on 127.0.0.1, for the night-to-day tests and the benchmark.

A real HTTP server (``ThreadingHTTPServer`` in a thread) that speaks the REST shape of
``POST /{v1,v1beta}/models/{model}:generateContent`` as the google-genai client sends it, so
the tests drive the real SDK over real HTTP. It checks the API key (``x-goog-api-key`` header
or ``?key=``), reads both spellings of inline data (``inlineData``/``inline_data``,
``mimeType``/``mime_type``) and records every request.

Images are told apart by a marker pixel: :func:`make_night_image` writes the marker into pixel
(0, 0) of a night image; the stand-in answers with solid day images coloured
``(marker, DAY_GREEN, corrected)``, so a check or correction request (which carries a day
image, maybe resized by the client) is traced back to its scenario, and a test can read from
a saved PNG which answer it came from. Scenarios are scripted per marker (see ``SCENARIOS``).
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from PIL import Image

DAY_GREEN = 200  # G channel of every day image the stand-in returns
THOUGHT_GREEN = 100  # G channel of the intermediate "thought" image

# scenario name -> what it does (the tests assert the consequences)
SCENARIOS = {
    "success": "image, then NO_STARS",
    "rate_limited_once": "429 with Retry-After: 1, then success",
    "unavailable_twice": "503, 503, then success",
    "blocked_prompt": "promptFeedback.blockReason, no candidates",
    "image_safety": "finishReason IMAGE_SAFETY, text but no image",
    "prohibited_content": "finishReason PROHIBITED_CONTENT, no content",
    "text_once": "text-only answer once, then success",
    "text_always": "text-only answer every time",
    "stars": "check answers HAS_STARS; the correction returns the corrected image",
    "wrong_size": "image at twice the source size",
    "thought": "a thought image, a text part, then the final image",
    "timeout_once": "the first answer comes after 3 s (past a short client timeout)",
}


@dataclass
class RecordedRequest:
    path: str
    api_version: str
    model: str
    kind: str  # image | check | correction
    marker: int | None
    status: int
    key_ok: bool
    at: float
    body_keys: list[str] = field(default_factory=list)
    prompt: str = ""


def make_night_image(path: Path, marker: int, size: tuple[int, int] = (32, 18),
                     mode: str = "L") -> Path:
    """A tiny night frame: dark gradient, a few stars, ``marker`` in pixel (0, 0)."""
    if not 1 <= marker <= 90:
        raise ValueError(f"marker {marker} must be in 1..90 (day images use G={DAY_GREEN})")
    width, height = size
    img = Image.new("L", size)
    px = img.load()
    for y in range(height):
        for x in range(width):
            px[x, y] = 10 + (y * 20) // height
    for x, y in ((5, 3), (20, 5), (27, 10)):
        if x < width and y < height:
            px[x, y] = 250
    px[0, 0] = marker
    if mode != "L":
        img = img.convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def _png(color: tuple[int, int, int], size: tuple[int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def _b64decode(text: str) -> bytes:
    # The REST API takes standard and URL-safe base64, padded or not (the SDK sends URL-safe).
    text = text.replace("-", "+").replace("_", "/")
    return base64.b64decode(text + "=" * (-len(text) % 4))


def _inline(part: dict) -> dict | None:
    return part.get("inlineData") or part.get("inline_data")


class GeminiStandIn:
    """Scripted generateContent server. Use as a context manager or call start()/stop()."""

    def __init__(self, api_key: str, scenarios: dict[int, str] | None = None,
                 image_delay_s: float = 0.0, check_model: str = "gemini-2.5-flash"):
        self.api_key = api_key
        self.scenarios: dict[int, str] = dict(scenarios or {})
        self.image_delay_s = image_delay_s
        self.check_model = check_model
        self.requests: list[RecordedRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._counts: dict[tuple[int | None, str], int] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        assert self._server is not None, "stand-in not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> GeminiStandIn:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body in one segment, sent at once: otherwise Nagle's algorithm and
            # delayed ACKs add ~40 ms to every answer, which is the stand-in's cost, not ours.
            disable_nagle_algorithm = True
            wbufsize = 1 << 16

            def do_POST(self) -> None:
                stand_in._handle(self)

            def log_message(self, format: str, *args) -> None:  # keep test output clean
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> GeminiStandIn:  # noqa: PYI034 (final class)
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- queries for tests -------------------------------------------------------------
    def requests_for(self, marker: int, kind: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests
                    if r.marker == marker and (kind is None or r.kind == kind)]

    def reset_log(self) -> None:
        with self._lock:
            self.requests.clear()
            self.max_in_flight = 0

    # --- the server ----------------------------------------------------------------------
    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            self._handle_request(handler)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _handle_request(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlparse(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        parts_path = url.path.strip("/").split("/")
        # /{version}/models/{model}:generateContent
        if (len(parts_path) != 3 or parts_path[1] != "models"
                or not parts_path[2].endswith(":generateContent")
                or parts_path[0] not in ("v1", "v1beta")):
            self._send(handler, 404, {"error": {"code": 404, "message": f"no route {url.path}",
                                                "status": "NOT_FOUND"}})
            return
        api_version, model = parts_path[0], parts_path[2].split(":")[0]
        key = handler.headers.get("x-goog-api-key") or parse_qs(url.query).get("key", [None])[0]
        body = json.loads(raw or b"{}")
        image, prompt = self._read_contents(body)
        marker, is_day = self._marker_of(image)
        if model == self.check_model:
            kind = "check"
        else:
            kind = "correction" if is_day else "image"
        record = RecordedRequest(url.path, api_version, model, kind, marker, 0,
                                 key == self.api_key, time.monotonic(), sorted(body), prompt)
        with self._lock:  # recorded on arrival, so a request the client gave up on counts too
            self.requests.append(record)
        if key != self.api_key:
            # Never echo the key back, as the real service does not.
            status, payload = 403, {"error": {"code": 403, "status": "PERMISSION_DENIED",
                                              "message": "Method doesn't allow unregistered "
                                                         "callers. Please use an API key."}}
            headers: dict[str, str] = {}
        else:
            scenario = self.scenarios.get(marker, "success") if marker is not None else "success"
            with self._lock:
                n = self._counts.get((marker, kind), 0)
                self._counts[(marker, kind)] = n + 1
            if kind != "check" and self.image_delay_s:
                time.sleep(self.image_delay_s)
            status, payload, headers = self._answer(scenario, kind, n, marker or 0, image, model)
        record.status = status
        self._send(handler, status, payload, headers)

    @staticmethod
    def _read_contents(body: dict) -> tuple[Image.Image | None, str]:
        image, prompt = None, ""
        for content in body.get("contents", []):
            for part in content.get("parts", []):
                inline = _inline(part)
                if inline:
                    mime = inline.get("mimeType") or inline.get("mime_type")
                    assert mime and mime.startswith("image/"), f"bad inline mime type {mime}"
                    image = Image.open(io.BytesIO(_b64decode(inline["data"])))
                    image.load()
                elif "text" in part:
                    prompt += part["text"]
        return image, prompt

    @staticmethod
    def _marker_of(image: Image.Image | None) -> tuple[int | None, bool]:
        if image is None:
            return None, False
        px = image.convert("RGB").getpixel((0, 0))
        if px[1] in (DAY_GREEN, THOUGHT_GREEN) and px[0] != px[1]:
            return px[0], True
        return px[0], False

    def _answer(self, scenario: str, kind: str, n: int, marker: int,
                image: Image.Image | None, model: str) -> tuple[int, dict, dict[str, str]]:
        size = image.size if image is not None else (32, 18)
        if kind == "check":
            answer = "HAS_STARS" if scenario == "stars" else "NO_STARS"
            return 200, _text_response(f"{answer}", model), {}
        if kind == "correction":
            return 200, _image_response([_png((marker, DAY_GREEN, 1), size)], model), {}
        if scenario == "timeout_once" and n == 0:
            time.sleep(3.0)
        if scenario == "rate_limited_once" and n == 0:
            return 429, {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED",
                                   "message": "Resource has been exhausted"}}, {"Retry-After": "1"}
        if scenario == "unavailable_twice" and n < 2:
            return 503, {"error": {"code": 503, "status": "UNAVAILABLE",
                                   "message": "The model is overloaded."}}, {}
        if scenario == "blocked_prompt":
            return 200, {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
                         "modelVersion": model}, {}
        if scenario == "image_safety":
            return 200, {"candidates": [{"content": {"role": "model", "parts": [
                {"text": "I can't generate that image."}]}, "finishReason": "IMAGE_SAFETY",
                "index": 0}], "modelVersion": model}, {}
        if scenario == "prohibited_content":
            return 200, {"candidates": [{"finishReason": "PROHIBITED_CONTENT", "index": 0}],
                         "modelVersion": model}, {}
        if scenario == "text_always" or (scenario == "text_once" and n == 0):
            return 200, _text_response("Here is a description of a daytime scene.", model), {}
        if scenario == "wrong_size":
            return 200, _image_response(
                [_png((marker, DAY_GREEN, 0), (size[0] * 2, size[1] * 2))], model), {}
        if scenario == "thought":
            resp = _image_response([_png((marker, DAY_GREEN, 0), size)], model)
            parts = resp["candidates"][0]["content"]["parts"]
            parts[:0] = [
                {"inlineData": {"mimeType": "image/png",
                                "data": base64.b64encode(
                                    _png((marker, THOUGHT_GREEN, 0), size)).decode()},
                 "thought": True},
                {"text": "Now the final image.", "thought": True},
            ]
            return 200, resp, {}
        return 200, _image_response([_png((marker, DAY_GREEN, 0), size)], model), {}

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, payload: dict,
              headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json; charset=UTF-8")
            handler.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(data)
            handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True  # the client gave up (timeout): as a real server


def _text_response(text: str, model: str) -> dict:
    return {"candidates": [{"content": {"role": "model", "parts": [{"text": text}]},
                            "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 10, "totalTokenCount": 12},
            "modelVersion": model}


def _image_response(images: list[bytes], model: str) -> dict:
    parts = [{"inlineData": {"mimeType": "image/png", "data": base64.b64encode(b).decode()}}
             for b in images]
    return {"candidates": [{"content": {"role": "model", "parts": parts},
                            "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 300, "totalTokenCount": 1590},
            "modelVersion": model}


# --- config and helpers for the night-to-day tests ---------------------------------------

REPO = Path(__file__).resolve().parents[1]


def prep_config(overrides: list[str]):
    """The real conf/prep.yaml composed in-process, as `python -m data_prep.night_to_day`."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose(config_name="prep", overrides=overrides)


def gemini_overrides(data_dir: Path, stand_in: GeminiStandIn, **extra) -> list[str]:
    """converter=gemini against the stand-in, with test-speed backoff."""
    settings = {"converter.base_url": stand_in.base_url, "converter.rpm": "null",
                "converter.concurrency": 4, "converter.backoff_initial_s": 0.05,
                "converter.backoff_max_s": 0.2, "converter.request_timeout_s": 20,
                "converter.max_no_image_retries": 2}
    settings.update({f"converter.{k}": v for k, v in extra.items()})
    return ["converter=gemini", f"paths.data_dir={data_dir}"] + [
        f"{k}={v}" for k, v in settings.items()]


def files_containing(root: Path, secret: str) -> list[Path]:
    """Every file under ``root`` whose bytes contain ``secret``."""
    needle = secret.encode()
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]
