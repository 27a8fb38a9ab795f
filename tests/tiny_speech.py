"""A tiny random-weight Kokoro model folder in sherpa-onnx's format, built offline in milliseconds.

Same files and the same contract as the k2-fsa "kokoro-multi-lang" releases the studio downloads:
``model.onnx`` (inputs ``tokens`` int64 [1, N], ``style`` float [1, D], ``speed`` float [1]; output
``audio`` float [T]; metadata ``model_type=kokoro``, ``version=2``, ``sample_rate``, ``n_speakers``,
``style_dim``, ``speaker_names``), ``voices.bin`` (n_speakers × max_len × D float32), ``tokens.txt``
(one character and its id a line) and the ``lexicon-us-en.txt`` / ``lexicon-zh.txt`` word lists.
The graph is an embedding, a projection to ``SAMPLES_PER_TOKEN`` samples per token and a tanh:
random sound, one fixed length per token, so the real loader, front end and runtime all run.
"""

from __future__ import annotations

from pathlib import Path

SAMPLE_RATE = 24000
SAMPLES_PER_TOKEN = 240  # 10 ms of audio per token
SPEAKERS = ("zm_009", "zm_010", "zf_001", "af_sol", "zf_003")
PUNCT = (";", ":", ",", ".", "!", "?", "—", "…", '"', "(", ")", "“", "”")
PHONES = "abcdefghijklmnopqrstuvwxyzɕʐəɜɪŋʃʒθðˈˌː↓↑→↗↘"
ZH_WORDS = {"你": "n i ↓", "好": "x a u ↓", "你好": "n i ↗ x a u ↓", "仙": "ɕ i a n →", "人": "ʐ ə n ↗",
            "剑": "t ɕ i a n ↘", "来": "l a i ↗", "山": "ʃ a n →", "上": "ʃ a ŋ ↘", "云": "y n ↗",
            "我": "w o ↓", "是": "ʃ ɪ ↘", "天": "t i a n →", "下": "ɕ i a ↘"}
EN_WORDS = {"hello": "h ə l o", "world": "w ɜ l d", "sword": "s ɔ d", "immortal": "ɪ m ɔ t ə l"}


def build_tiny_kokoro(folder: Path, *, speakers: tuple[str, ...] = SPEAKERS, style_len: int = 128,
                      style_dim: int = 16, seed: int = 0) -> Path:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    tokens = ["$", *PUNCT, " ", *PHONES]
    with open(folder / "tokens.txt", "w", encoding="utf-8") as fh:
        for i, tok in enumerate(tokens):
            fh.write(f"{tok} {i}\n")
    (folder / "lexicon-zh.txt").write_text("".join(f"{w} {p}\n" for w, p in ZH_WORDS.items()), encoding="utf-8")
    (folder / "lexicon-us-en.txt").write_text("".join(f"{w} {p}\n" for w, p in EN_WORDS.items()), encoding="utf-8")

    hidden = 8
    weights = [numpy_helper.from_array(rng.standard_normal((len(tokens), hidden)).astype(np.float32), "embed"),
               numpy_helper.from_array((rng.standard_normal((hidden, SAMPLES_PER_TOKEN)) * 0.3).astype(np.float32), "up"),
               numpy_helper.from_array((rng.standard_normal((style_dim, SAMPLES_PER_TOKEN)) * 0.3).astype(np.float32),
                                       "style_proj"),
               numpy_helper.from_array(np.array([-1], dtype=np.int64), "flat"),
               numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1")]
    nodes = [helper.make_node("Gather", ["embed", "tokens"], ["e"], axis=0),
             helper.make_node("MatMul", ["e", "up"], ["u"]),
             helper.make_node("MatMul", ["style", "style_proj"], ["s"]),
             helper.make_node("Unsqueeze", ["s", "axis1"], ["s3"]),
             helper.make_node("Add", ["u", "s3"], ["mix"]),
             helper.make_node("Tanh", ["mix"], ["wave"]),
             helper.make_node("Reshape", ["wave", "flat"], ["audio"])]
    graph = helper.make_graph(
        nodes, "tiny-kokoro",
        [helper.make_tensor_value_info("tokens", TensorProto.INT64, [1, "n"]),
         helper.make_tensor_value_info("style", TensorProto.FLOAT, [1, style_dim]),
         helper.make_tensor_value_info("speed", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("audio", TensorProto.FLOAT, ["t"])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    meta = {"model_type": "kokoro", "language": "multi-lang, e.g., English, Chinese", "has_espeak": 1,
            "sample_rate": SAMPLE_RATE, "version": 2, "voice": "en-us", "style_dim": f"{style_len},1,{style_dim}",
            "n_speakers": len(speakers), "speaker_names": ",".join(speakers),
            "speaker2id": ",".join(f"{n}->{i}" for i, n in enumerate(speakers))}
    for key, value in meta.items():
        prop = model.metadata_props.add()
        prop.key, prop.value = key, str(value)
    onnx.checker.check_model(model)
    onnx.save(model, str(folder / "model.onnx"))
    rng.standard_normal((len(speakers), style_len, style_dim)).astype(np.float32).tofile(folder / "voices.bin")
    return folder


def teach_words(folder: Path, texts) -> Path:
    """Add every Chinese character and English word of ``texts`` to the tiny model's lexicons (one
    fixed pronunciation each), so any script can be spoken; the model itself is unchanged."""
    import re

    chars = sorted({ch for t in texts for ch in t if "\u4e00" <= ch <= "\u9fff"} - set(ZH_WORDS))
    words = sorted({w.lower() for t in texts for w in re.findall(r"[A-Za-z]+", t)} - set(EN_WORDS))
    with open(folder / "lexicon-zh.txt", "a", encoding="utf-8") as fh:
        fh.writelines(f"{ch} {PHONES[i % 26]} a ↓\n" for i, ch in enumerate(chars))
    with open(folder / "lexicon-us-en.txt", "a", encoding="utf-8") as fh:
        fh.writelines(f"{w} {' '.join(w[:4])}\n" for w in words)
    return folder
