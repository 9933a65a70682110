"""The model folder's manifest as one typed record: written by the harness, read by everyone else.

A model folder is data only: ``manifest.json`` plus the plugin's state files. The manifest says
which detector (and version) wrote the folder, how its input is preprocessed, its parameters, the
normalisation and threshold fixed on held-out normal data, and what it was trained on. Loading,
the registry, evaluation and the CLI all read it through ``Manifest``, so a hand-edited,
truncated or foreign manifest is refused here, with one line naming the bad field, before any
network is built.
"""

from __future__ import annotations

import dataclasses
import json
import stat
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from anomaly import __version__
from anomaly.errors import AnomalyError, ArtifactError
from anomaly.inputs import Spec, finite, spec_from_dict
from anomaly.modes import FEATURES, MAX_MODES, ImageModes
from anomaly.threshold import Normaliser

ARTIFACT_FORMAT = 1
MANIFEST = "manifest.json"
# A manifest holds hyper-parameters, channel statistics and the training history: kilobytes, or a
# megabyte for thousands of epochs. Anything far larger is not one, and would be read into memory whole.
MAX_MANIFEST_BYTES = 16 * 2**20


def _finite(value: Any) -> float:
    """JSON numbers only: pydantic's lax mode would also take "0.5", true or 1e400 (infinity)."""
    if finite(value):
        return float(value)
    raise ValueError(f"must be a finite number, not {value!r}")


FiniteFloat = Annotated[float, BeforeValidator(_finite)]


class _Record(BaseModel):
    """Refuses fields it does not know: a misspelt key in a hand-edited manifest is an error, not ignored."""

    model_config = ConfigDict(extra="forbid")


class DetectorRef(_Record):
    """Who wrote the folder. The version's major part is the compatibility key; components are the score's parts."""

    name: str
    version: str
    components: list[str] = Field(default_factory=list)


class Normalisation(_Record):
    """Per-component mean and spread on held-out normal data, and the weights that combine them."""

    mean: dict[str, FiniteFloat]
    std: dict[str, FiniteFloat]
    weights: dict[str, FiniteFloat]

    @model_validator(mode="after")
    def _every_weight_standardisable(self) -> Normalisation:
        unmatched = set(self.weights) - (set(self.mean) & set(self.std))
        if unmatched or min(self.std.values(), default=1.0) <= 0:
            raise ValueError("needs a mean and a positive std for every weighted component")
        return self

    @classmethod
    def of(cls, normaliser: Normaliser) -> Normalisation:
        return cls(mean=normaliser.mean, std=normaliser.std, weights=normaliser.weights)

    def normaliser(self) -> Normaliser:
        return Normaliser(mean=dict(self.mean), std=dict(self.std), weights=dict(self.weights))


class ModeFigures(_Record):
    """Modes of normal images: their clustering, and per mode the held-out normal scores' mean and spread."""

    centroids: list[list[FiniteFloat]] = Field(min_length=2, max_length=MAX_MODES)
    mean: list[FiniteFloat]
    std: list[FiniteFloat]

    @model_validator(mode="after")
    def _consistent(self) -> ModeFigures:
        if any(len(c) != FEATURES for c in self.centroids):
            raise ValueError(f"needs {FEATURES} features per centroid")
        if len(self.mean) != len(self.centroids) or len(self.std) != len(self.centroids) or min(self.std) <= 0:
            raise ValueError("needs one mean and one positive std per mode")
        return self

    @classmethod
    def of(cls, modes: ImageModes) -> ModeFigures:
        return cls(**dataclasses.asdict(modes))

    def image_modes(self) -> ImageModes:
        return ImageModes(**self.model_dump())


class DataSource(_Record):
    """What the model was trained on, so evaluation can leave those items out and a retrain can find it again."""

    source: str | None = None
    items: int = Field(ge=0)
    trained_ids: list[str] = Field(default_factory=list)


class Training(_Record):
    """When and how long training ran, its per-epoch history and the data it saw."""

    started_at: datetime
    finished_at: datetime
    seconds: FiniteFloat
    train_items: int
    validation_items: int
    train_samples: int
    validation_samples: int
    epochs_run: int
    best_epoch: int | None = None
    history: list[dict[str, int | FiniteFloat]] = Field(default_factory=list)
    metrics: dict[str, int | FiniteFloat] = Field(default_factory=dict)
    data: DataSource | None = None
    # What ran the networks (Keras detectors only; absent in manifests written before they were recorded):
    # the Keras backend, the device ("cpu", "gpu:NVIDIA H200") and the dtype policy training used.
    backend: str | None = None
    device: str | None = None
    precision: str | None = None


class Manifest(_Record):
    """Everything a model folder holds besides the plugin's data-only state files."""

    format: int = ARTIFACT_FORMAT
    anomaly_version: str = __version__
    detector: DetectorRef
    input: dict[str, Any]
    params: dict[str, Any]
    settings: dict[str, Any] = Field(default_factory=dict)
    normalisation: Normalisation
    threshold: FiniteFloat
    map_scale: FiniteFloat | None = None
    modes: ModeFigures | None = None
    training: Training
    # The options ``anomaly train`` was run with, so the run can be repeated from the folder.
    config: dict[str, Any] = Field(default_factory=dict)
    # The input plan chosen from the images (anomaly.plan): each choice, and which the rule made itself.
    plan: dict[str, Any] | None = None
    libraries: dict[str, str] = Field(default_factory=dict)

    @field_validator("input", mode="before")
    @classmethod
    def _a_known_spec(cls, value: Any) -> Any:
        """The preprocessing spec is checked in full (bounds included) now, not when scoring first fails."""
        try:
            spec_from_dict(value)
        except AnomalyError as exc:
            raise ValueError(str(exc)) from None
        return value

    @property
    def spec(self) -> Spec:
        return spec_from_dict(self.input)

    @classmethod
    def read(cls, directory: Path | str) -> Manifest:
        """The folder's manifest, or one ArtifactError line saying what is wrong with it."""
        directory = Path(directory)
        raw = _read_json(directory)
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise ArtifactError(f"{directory}: manifest {_first_fault(exc)}") from None

    def write(self, directory: Path) -> Path:
        path = directory / MANIFEST
        path.write_text(self.model_dump_json(indent=2))
        return path

    def to_json(self) -> dict[str, Any]:
        """Plain JSON values, as the registry stores the manifest beside each version."""
        return self.model_dump(mode="json")


def _read_json(directory: Path) -> dict[str, Any]:
    """The manifest's JSON, refused unless it is a readable, bounded format-1 manifest that names its detector."""
    path = directory / MANIFEST
    if not directory.is_dir():
        raise ArtifactError(f"{directory}: no such model folder")
    if not path.is_file():
        raise ArtifactError(f"{directory}: not a model folder (no {MANIFEST})")
    size = state_file(directory, MANIFEST).stat().st_size
    if size > MAX_MANIFEST_BYTES:
        raise ArtifactError(f"{path}: {size} bytes, over the {MAX_MANIFEST_BYTES} a manifest may have")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ArtifactError(f"{path}: damaged manifest ({exc})") from None
    fmt = manifest.get("format") if isinstance(manifest, dict) else None
    if fmt != ARTIFACT_FORMAT:
        written_by = manifest.get("anomaly_version", "an unknown version") if isinstance(manifest, dict) else "?"
        raise ArtifactError(
            f"{directory}: model format {fmt!r} written by anomaly {written_by}; "
            f"this anomaly {__version__} reads format {ARTIFACT_FORMAT}: retrain or use a matching version"
        )
    detector = manifest.get("detector")
    if not (isinstance(detector, dict) and isinstance(detector.get("name"), str) and "version" in detector):
        raise ArtifactError(f"{path}: damaged manifest (no detector name and version)")
    return manifest


def _first_fault(error: ValidationError) -> str:
    """pydantic's first complaint as one line: the dotted field, then what is wrong with it."""
    fault = error.errors(include_url=False)[0]
    where = ".".join(str(part) for part in fault["loc"])
    kind = fault["type"]
    if kind == "missing":
        return f"lacks {where}"
    if kind == "extra_forbidden":
        return f"{where}: not a manifest field"
    if kind in ("dict_type", "model_type"):
        return f"{where} must be a mapping, not {type(fault['input']).__name__}"
    if kind == "value_error":
        reason = str(fault["ctx"]["error"])
        # "threshold must be a finite number", but "input: unknown series input field(s) colours".
        return f"{where} {reason}" if reason.startswith(("must ", "needs ")) else f"{where}: {reason}"
    return f"{where}: {fault['msg']}"


def state_file(directory: Path, name: str) -> Path:
    """A file of the model folder, refused unless it is a regular file inside the folder.

    Plugins open their state through this: a symlink (to a file outside the folder, say) or a
    fifo or device in its place would make loading read whatever it points at, or block forever.
    """
    path = directory / name
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        raise ArtifactError(f"{directory}: missing state file {name}") from None
    if stat.S_ISLNK(mode):
        raise ArtifactError(f"{path}: a symlink, not a file of the model folder; copy the file in instead")
    if not stat.S_ISREG(mode):
        raise ArtifactError(f"{path}: not a regular file")
    if not path.resolve().is_relative_to(directory.resolve()):
        raise ArtifactError(f"{path}: outside the model folder")
    return path
