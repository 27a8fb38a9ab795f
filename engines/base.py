"""The engine contract: what every local pipeline and cloud adapter implements.

An engine is a class with:

``id``            stable name used in requests, job rows and file names (``wan2.1-t2v-1.3b``).
``kind``          ``"local"`` (runs here, on the gpu lane) or ``"cloud"`` (io lane, never blocks).
                  A local engine of CPU work in seconds may override ``lane`` to ``"io"`` (local-tts).
``tasks``         what it can do: any of ``t2i t2v i2v kf2v ref2v tts script`` (``tts``: speech from
                  ``params.text``; its outputs are ``audio`` with a ``duration``; ``script``: a draft
                  project from ``params.text``; its output is ``text``, a JSON file (profiles.draft_model)).
``title``         a human label for the UI.
``needs``         what must be present: ``("weights",)``, ``("key:DASHSCOPE_API_KEY",)``...
``Params``        a pydantic model (``extra="forbid"``) of the engine's own parameters. Its fields,
                  their descriptions, bounds and ``Literal`` choices build the UI form and the
                  ``params_schema`` of ``/engines``. A field named ``seed`` whose value is ``None``
                  is given a random seed by the job service before the job is stored.

``voices() -> [{"id", "voice", "name", "language", "gender"}]``
    The voices a ``tts`` engine speaks with (``/engines`` lists them; cheap, like ``available``);
    ``[]`` for the others. Every speech engine answers to ``narrator``, ``male`` and ``female``
    (``voice`` names the engine's own id each stands for) besides its own ids.

``field_choices(name) -> (choices, folder) | None``
    Choices a form field takes from this machine rather than from ``Params`` (the LoRA files of
    ``models/loras``: ``(["仙侠风格", ...], Path)``); ``None`` for a plain field.

``shape_seed_request(model, params) -> {field: what changed}``
    Vendor-specific touch-ups a REST seed needs before ``Params`` sees the request (a Vidu model
    that makes one size; DashScope's ``1280*720`` sizes). Changes ``params`` in place; ``{}``
    when nothing changed.

``available() -> (ok, reason)``
    Cheap (no model load, no network): weights on disk, keys set, packages importable.
    ``reason`` tells a person what to do when ``ok`` is false: a ``Reason`` (English; its
    Chinese in ``.zh``), or a plain string.

``check(request)``
    Cross-field rules the ``Params`` model cannot express (an i2v engine without an image,
    a model that forbids a size...). Raise ``ValidationError``. Runs before the job is stored.

``run(request, progress, cancelled) -> list[Output]``   (local engines)
    Produce the outputs inside ``request.workdir``. Call ``progress(step, total, preview)``
    as work advances and ``cancelled()`` at least once a step; when it returns true raise
    ``Cancelled``. Never write outside ``request.workdir``: the job service moves the whole
    folder into ``outputs/`` only when the job succeeds, so a failed or killed job leaves no
    partial files behind.

Cloud engines (``CloudEngine``) split ``run`` in three so that no thread waits on a vendor:
``start`` sends one create request and returns the vendor's task id (stored and committed
before anything else), ``poll`` asks once, and ``collect`` downloads a finished task's
files into ``request.workdir``. The queue calls ``poll`` again after ``poll_delay``.
"""

from __future__ import annotations

import base64
import mimetypes
import secrets as _secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from app.secrets import SecretStore
    from app.settings import Settings

Task = Literal["t2i", "t2v", "i2v", "kf2v", "ref2v", "tts", "script"]
ProgressFn = Callable[..., None]  # progress(step, total, preview=None)
CancelledFn = Callable[[], bool]


class Params(BaseModel):
    """Base of every engine's parameter model: unknown fields are an error."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class ImageInput:
    """An input image: a file the studio holds, or a URL passed through to a vendor."""

    role: str  # first_frame | last_frame | reference
    path: Path | None = None
    url: str | None = None

    @property
    def mime(self) -> str:
        if self.path is None:
            return "image/png"
        return mimetypes.guess_type(self.path.name)[0] or "image/png"

    def read_bytes(self) -> bytes:
        if self.path is None:
            raise ValueError("this image is a URL; fetch it or pass the URL through")
        return self.path.read_bytes()

    def as_base64(self) -> str:
        return base64.b64encode(self.read_bytes()).decode("ascii")

    def as_data_uri(self) -> str:
        return f"data:{self.mime};base64,{self.as_base64()}"

    def open(self):
        from PIL import Image

        with Image.open(self.path) as im:
            return im.convert("RGB")


@dataclass
class EngineRequest:
    job_id: str
    prompt: str
    negative_prompt: str
    params: Any  # the engine's Params instance, seed resolved
    workdir: Path
    images: list[ImageInput] = field(default_factory=list)
    attempt: int = 1

    def image(self, role: str = "first_frame") -> ImageInput | None:
        return next((im for im in self.images if im.role == role), None)


@dataclass
class Output:
    """One produced file, inside the job's workdir."""

    path: Path
    kind: Literal["video", "image", "audio", "text"]
    width: int | None = None
    height: int | None = None
    frames: int | None = None
    fps: float | None = None
    thumbnail: Path | None = None
    meta: dict = field(default_factory=dict)  # original URL, actual prompt, cover...
    duration: float | None = None  # seconds (audio; video when known)
    timings: list | None = None  # speech: [[start_s, end_s, text], ...] when the engine knows them
    has_audio: bool | None = None  # a video: whether the file has a sound track (None: not probed)


@dataclass
class RemoteState:
    """One answer from a vendor about a task."""

    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    raw_status: str
    progress: float | None = None  # 0-100 when the vendor says
    urls: list[str] = field(default_factory=list)
    error: Exception | None = None  # a ProviderError when failed
    info: dict = field(default_factory=dict)  # actual prompt, cover image, usage...


def output_name(prefix: str, index: int, ext: str) -> str:
    """``{prefix}_{YYYYmmdd_HHMMSS}_{index}_{rand8}.{ext}`` (seed 002's scheme)."""
    return f"{prefix}_{time.strftime('%Y%m%d_%H%M%S')}_{index}_{_secrets.token_hex(4)}.{ext}"


class Engine:
    id: ClassVar[str]
    kind: ClassVar[Literal["local", "cloud"]] = "local"
    tasks: ClassVar[tuple[str, ...]] = ()
    title: ClassVar[str] = ""
    needs: ClassVar[tuple[str, ...]] = ()
    Params: ClassVar[type[Params]] = Params

    def __init__(self, settings: Settings, secrets: SecretStore | None = None):
        self.settings = settings
        self.secrets = secrets

    @property
    def lane(self) -> str:
        return "gpu" if self.kind == "local" else "io"

    def voices(self) -> list[dict]:
        return []

    def field_choices(self, name: str):
        return None

    def shape_seed_request(self, model: str, params: dict) -> dict:
        return {}

    def available(self) -> tuple[bool, str]:
        return True, ""

    def last_frame_params(self, params: dict) -> dict | None:
        """Parameter changes that make this engine also return the clip's last frame as an output of
        kind ``image`` with ``meta.role == "last_frame"`` (asked for when a scene continues from this
        clip), or None when it cannot."""
        return None

    def check(self, request: EngineRequest) -> None:
        return None

    def run(self, request: EngineRequest, progress: ProgressFn, cancelled: CancelledFn) -> list[Output]:
        raise NotImplementedError


class Reason(str):
    """An availability reason: the English text (it is the str) with the Chinese in ``.zh``."""

    zh: str

    def __new__(cls, en: str, zh: str | None = None):
        obj = super().__new__(cls, en)
        obj.zh = zh or en
        return obj


def reason_text(reason: str, lang: str = "en") -> str:
    """A reason in the UI's language (a plain-string reason is the same in both)."""
    return getattr(reason, "zh", reason) if lang == "zh" else str(reason)


class CloudEngine(Engine):
    kind: ClassVar[Literal["local", "cloud"]] = "cloud"
    can_cancel: ClassVar[bool] = False  # the vendor has a cancel API (for queued tasks)

    def start(self, request: EngineRequest) -> str:
        raise NotImplementedError

    def poll(self, remote_id: str, request: EngineRequest) -> RemoteState:
        raise NotImplementedError

    def collect(self, state: RemoteState, request: EngineRequest) -> list[Output]:
        raise NotImplementedError

    def cancel_remote(self, remote_id: str) -> bool:
        """Ask the vendor to cancel; True when it did. Default: no cancel API."""
        return False

    def poll_delay(self, polls: int) -> float:
        """Seconds before the next ``poll``, after ``polls`` polls so far."""
        return min(2.0 * (1.5 ** polls), 15.0)
