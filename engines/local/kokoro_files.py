"""The files of a sherpa-onnx Kokoro model folder, checked before sherpa-onnx ever sees them.

sherpa-onnx ends the whole process (``exit(-1)``) on a malformed model, so everything it would
refuse is checked here first, in Python, with a message that says what to do:

``KokoroFolder.scan(path) -> KokoroFolder``   which files are there (``missing`` lists the absent ones)
``KokoroFolder.check() -> KokoroMeta``        the ONNX metadata read and matched against ``voices.bin``
                                              and ``tokens.txt``; ``EngineError`` when they disagree
``onnx_metadata(path) -> dict``               the model's ``metadata_props`` without loading the graph
                                              (the protobuf's top-level fields are skipped, not parsed)

Folder layout (the k2-fsa "kokoro-multi-lang" releases): ``model*.onnx``, ``voices.bin``,
``tokens.txt``, ``lexicon-us-en.txt`` + ``lexicon-zh.txt`` (other ``lexicon-*.txt`` are used when
those are absent), and optionally the Chinese text-normalisation rules ``date-zh.fst``,
``number-zh.fst``, ``phone-zh.fst``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from core.errors import EngineError

RULES = ("date-zh.fst", "phone-zh.fst", "number-zh.fst")
PREFERRED_LEXICONS = ("lexicon-us-en.txt", "lexicon-zh.txt")


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _fields(read, size: int):
    """(field number, wire type, payload or None) for each top-level field of a protobuf message;
    length-delimited payloads of other fields are skipped with ``read(None, n)``."""
    pos = 0
    while pos < size:
        head = read(pos, 10)
        key, used = _varint(head, 0)
        pos += used
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, used = _varint(read(pos, 10), 0)
            pos += used
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            length, used = _varint(read(pos, 10), 0)
            pos += used
            yield number, wire, (pos, length)
            pos += length
        else:
            raise ValueError(f"unsupported wire type {wire}")


def onnx_metadata(path: Path) -> dict[str, str]:
    """ModelProto field 14 (``metadata_props``: key = 1, value = 2), read with a few seeks."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        def read(pos: int, n: int) -> bytes:
            fh.seek(pos)
            return fh.read(n)

        meta: dict[str, str] = {}
        for number, _, (start, length) in (f for f in _fields(read, size) if f[1] == 2):
            if number != 14 or length > 1 << 20:
                continue
            entry = read(start, length)
            key = value = ""
            for sub, _, (s, n) in (f for f in _fields(lambda p, k: entry[p:p + k], length) if f[1] == 2):
                text = entry[s:s + n].decode("utf-8", "replace")
                key, value = (text, value) if sub == 1 else (key, text) if sub == 2 else (key, value)
            if key:
                meta[key] = value
    return meta


@dataclass
class KokoroMeta:
    sample_rate: int
    speakers: list[str]  # native voice ids, index = sherpa-onnx sid
    version: int


@dataclass
class KokoroFolder:
    path: Path
    model: Path | None = None
    lexicons: list[Path] = field(default_factory=list)
    rules: list[Path] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def voices(self) -> Path:
        return self.path / "voices.bin"

    @property
    def tokens(self) -> Path:
        return self.path / "tokens.txt"

    @classmethod
    def scan(cls, path: Path) -> "KokoroFolder":
        folder = cls(path)
        onnx = sorted(path.glob("*.onnx")) if path.is_dir() else []
        by_name = {p.name: p for p in onnx}
        folder.model = by_name.get("model.int8.onnx") or by_name.get("model.onnx") or (onnx[0] if onnx else None)
        if folder.model is None:
            folder.missing.append("model.onnx")
        for name in ("voices.bin", "tokens.txt"):
            if not (path / name).is_file():
                folder.missing.append(name)
        preferred = [path / n for n in PREFERRED_LEXICONS if (path / n).is_file()]
        folder.lexicons = preferred or (sorted(path.glob("lexicon*.txt")) if path.is_dir() else [])
        if not any(p.name.endswith("zh.txt") for p in folder.lexicons):
            folder.missing.append("lexicon-zh.txt")
        folder.rules = [path / n for n in RULES if (path / n).is_file()]
        return folder

    def check(self) -> KokoroMeta:
        if self.missing:
            raise EngineError(f"The Kokoro model in {self.path} lacks {', '.join(self.missing)}.",
                              f"{self.path} 中的 Kokoro 模型缺少 {', '.join(self.missing)}。")
        try:
            meta = onnx_metadata(self.model)
        except (OSError, ValueError) as exc:
            raise self._bad(f"{self.model.name} is not a readable ONNX file ({exc})") from exc
        if meta.get("model_type") != "kokoro":
            raise self._bad(f"{self.model.name} is not a Kokoro model (model_type={meta.get('model_type')!r})")
        try:
            rate, speakers, version = int(meta["sample_rate"]), int(meta["n_speakers"]), int(meta.get("version", 1))
            dims = [int(x) for x in meta["style_dim"].split(",")]
        except (KeyError, ValueError) as exc:
            raise self._bad(f"{self.model.name} lacks its sample_rate / n_speakers / style_dim metadata") from exc
        if version < 2:
            raise self._bad(f"{self.model.name} is an English-only Kokoro (version {version}); Chinese needs the "
                            "multi-lang model")
        if len(dims) != 3 or dims[1] != 1 or speakers < 1:
            raise self._bad(f"{self.model.name} has a style_dim of {meta['style_dim']}")
        expected = speakers * dims[0] * dims[2] * 4
        if self.voices.stat().st_size != expected:
            raise self._bad(f"voices.bin holds {self.voices.stat().st_size} bytes, the model expects {expected}")
        for number, line in enumerate(self.tokens.read_text(encoding="utf-8").splitlines(), 1):
            token = line.rsplit(maxsplit=1)[0] if line.strip() and not line.startswith(" ") else " "
            if line.strip() and len(token) != 1:
                raise self._bad(f"tokens.txt line {number} is not one character and an id")
        names = [n for n in meta.get("speaker_names", "").split(",") if n]
        if len(names) != speakers:
            names = [f"speaker_{i}" for i in range(speakers)]
        return KokoroMeta(sample_rate=rate, speakers=names, version=version)

    def _bad(self, what: str) -> EngineError:
        return EngineError(f"The Kokoro model in {self.path} cannot be used: {what}. Download it again in Settings → "
                           "Models.", f"{self.path} 中的 Kokoro 模型无法使用：{what}。请在“设置 → 模型”中重新下载。")
