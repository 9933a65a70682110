"""Speed suite: training time, scoring throughput and latency, AnoGAN's batched search, GANomaly's GFLOP/s.

Every detector and baseline runs with its default options (what a user gets) on 64×64 grayscale
images and on 32-step windows of SMD machine-2-2 (38 channels). Scoring goes through the public
``Detector.score`` path, preprocessing and normalisation included, with ``score_batch_size`` set to
1 and to 256; each timed call follows an untimed one of the same batch shape, so graph tracing is
not counted. Speed does not depend on what the pixels show, so images are smooth random textures.

The achieved GFLOP/s of GANomaly's forward pass is its FLOP count (every convolution, transposed
convolution and dense layer it runs to score a sample, counted from layer shapes; element-wise ops
left out) times the measured rate, set against this machine's peak measured with a large float32
matmul in TensorFlow.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from anomaly.data.images import ImageSet
from anomaly.data.series import SeriesSet
from anomaly.detector import Detector, FitSettings
from anomaly.inputs import ImageSpec, SeriesSpec, encode
from anomaly.keras.detector import DEFAULT_WIDTH
from benchmarks import datasets
from benchmarks.quality import BASELINES, FULL_BATCH
from benchmarks.report import DOCS, table, write_raw, write_section
from benchmarks.system import describe_machine

IMAGE_SIZE = 64
WINDOW = 32
BATCH_SIZES = (1, 256)
TRAIN_BATCH = 64
TIMED_TRAIN_STEPS = 5
SMD_MACHINE = datasets.DATA / "smd" / "machine-2-2.npz"
TARGETS = {"images": 300.0, "windows": 20_000.0}
TARGET_SEARCH_RATIO = 50.0
# (row label, detector, option overrides): defaults first; GANomaly at width 32 (the image default
# before these benchmarks moved it to 16) shows what the wider network costs.
DETECTORS: dict[str, list[tuple[str, str, dict[str, Any]]]] = {
    "images": [(n, n, {}) for n in ("ganomaly", "anogan", *BASELINES)]
    + [("ganomaly width=32", "ganomaly", {"width": 32})],
    "windows": [(n, n, {}) for n in ("ganomaly", "anogan", *BASELINES)],
}
# Items scored per timed call: enough to last about a second for fast detectors, few for AnoGAN's search.
ITEMS = {("images", 1): 32, ("images", 256): 1024, ("windows", 1): 256, ("windows", 256): 16384}
ANOGAN_ITEMS = {("images", 1): 4, ("images", 256): 256, ("windows", 1): 64, ("windows", 256): 2048}
SEARCH_BATCH = {"images": 64, "windows": 1024}
SEARCH_SINGLES = {"images": 4, "windows": 32}


@dataclass(frozen=True)
class Size:
    """How much one run measures: ``full`` makes the docs figures; ``smoke`` (a few items, tiny networks)
    only shows that every row and column is produced, so its figures mean nothing."""

    name: str
    image_size: int
    train_images: int
    train_steps: int
    # Items per timed call, search batches and singles are the full run's divided by this.
    divisor: int
    peak_n: int
    # Option overrides per detector, applied before each row's own.
    options: dict[str, dict[str, Any]]

    def count(self, full: int) -> int:
        return max(1, full // self.divisor)


_TINY = {"width": 4, "latent": 8}
SIZES = {
    "full": Size("full", IMAGE_SIZE, 256, 4096, 1, 4096, {}),
    "smoke": Size(
        "smoke",
        16,
        32,
        512,
        64,
        256,
        {"ganomaly": _TINY, "anogan": {**_TINY, "search_steps": 2}, "autoencoder": _TINY, "iforest": {"trees": 10}},
    ),
}


def textures(count: int, seed: int = 0, size: int = IMAGE_SIZE) -> ImageSet:
    """Smooth random grayscale images of ``size`` pixels: upsampled noise, like lit surfaces."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(40, 220, (count, 8, 8))
    images = np.kron(coarse, np.ones((size // 8, size // 8))) + rng.normal(0, 6, (count, size, size))
    arrays = [np.clip(img, 0, 255).astype(np.uint8)[..., None] for img in images]
    return ImageSet(ids=[f"texture-{i}" for i in range(count)], images=arrays)


def sensor_windows(steps: int) -> SeriesSet:
    """The first ``steps`` rows of SMD machine-2-2's training series (38 channels)."""
    train, _ = datasets.npz_arrays(SMD_MACHINE)
    return train.slice(0, steps)


def measure_peak(n: int = 4096, repeats: int = 5) -> float:
    """Best GFLOP/s of an n×n float32 matmul in TensorFlow: what this CPU can do at best."""
    import tensorflow as tf

    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    matmul = tf.function(lambda x, y: tf.reduce_sum(tf.linalg.matmul(x, y)))
    matmul(a, b).numpy()
    best = math.inf
    for _ in range(repeats):
        started = time.perf_counter()
        matmul(a, b).numpy()
        best = min(best, time.perf_counter() - started)
    return 2 * n**3 / best / 1e9


def layer_flops(model: Any) -> int:
    """FLOPs (multiply and add counted as two) of one sample through a Keras model's weighted layers."""
    from keras import layers

    total = 0
    for layer in model.layers:
        if hasattr(layer, "layers"):
            total += layer_flops(layer)
            continue
        if not isinstance(
            layer, (layers.Conv1D, layers.Conv2D, layers.Conv1DTranspose, layers.Conv2DTranspose, layers.Dense)
        ):
            continue
        # Each kernel weight is used once per output position (per input position when transposed).
        transposed = isinstance(layer, (layers.Conv1DTranspose, layers.Conv2DTranspose))
        positions = math.prod((layer.input if transposed else layer.output).shape[1:-1])
        total += 2 * positions * math.prod(layer.kernel.shape)
    return total


def ganomaly_forward_flops(detector: Detector) -> int:
    """Scoring a sample runs encoder, decoder, second encoder and the discriminator body twice (x and x̂)."""
    m = detector.model
    return layer_flops(m.encoder) + layer_flops(m.decoder) + layer_flops(m.encoder2) + 2 * layer_flops(m.features)


def _detector(name: str, spec: ImageSpec | SeriesSpec, overrides: dict[str, Any]) -> Detector:
    import dataclasses

    from anomaly.plugins import registry

    cls = registry().get(name)
    one_pass = name in BASELINES and name != "autoencoder"
    settings = (
        FitSettings(epochs=1, batch_size=FULL_BATCH, patience=None)
        if one_pass
        else FitSettings(epochs=1, batch_size=TRAIN_BATCH, patience=None)
    )
    return cls(spec, dataclasses.replace(cls.Params(), **overrides), settings)


def _timed(call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def full_batches(x: np.ndarray, batch: int, count: int) -> list[np.ndarray]:
    """``count`` consecutive batches of ``batch`` rows, wrapping round ``x`` when it holds fewer."""
    return [x[np.arange(i * batch, (i + 1) * batch) % len(x)] for i in range(count)]


def train_rate(detector: Detector, x: np.ndarray) -> float:
    """Training samples per second from the median step time (a neighbour's burst on the shared CPU skews a mean);
    the first, traced steps already ran during fit. Every timed batch is full, wrapping round ``x`` when it
    holds fewer than the steps need: an empty batch times nothing and trains the networks on NaN losses."""
    if detector.fits_once:
        return len(x) / _timed(lambda: detector.fit_once(x))
    if detector.settings.batch_size == FULL_BATCH or detector.name == "autoencoder":
        return len(x) / _timed(lambda: detector.train_step(x))
    batches = full_batches(x, TRAIN_BATCH, TIMED_TRAIN_STEPS)
    step = float(np.median([_timed(lambda b=b: detector.train_step(b)) for b in batches]))
    return TRAIN_BATCH / step


def _items(kind: str, data: ImageSet | SeriesSet, count: int) -> ImageSet | SeriesSet:
    if kind == "images":
        return data.subset(np.arange(count) % len(data))
    return data.slice(0, count + WINDOW - 1)


def score_rate(
    detector: Detector, kind: str, data: ImageSet | SeriesSet, batch: int, size: Size = SIZES["full"]
) -> dict[str, float]:
    """Items per second through ``Detector.score`` at one batch size, after an untimed warm-up call.

    The warm-up scores the same items as the timed call, so the timing sees a scorer in its steady
    state: traced graphs and memory of the right sizes (a first pass over 16k windows ran 40 % slower
    than the next). AnoGAN's search is one graph with a free batch dimension, so one item traces it
    and a second pass of minutes of CPU is spared.
    """
    anogan = detector.name == "anogan"
    count = size.count((ANOGAN_ITEMS if anogan else ITEMS)[(kind, batch)])
    detector.score_batch_size = batch
    detector.score(_items(kind, data, 1 if anogan else count), maps=False, stride=1)
    seconds = _timed(lambda: detector.score(_items(kind, data, count), maps=False, stride=1))
    return {
        "items": count,
        "seconds": seconds,
        "per_second": count / seconds,
        "latency_ms": 1000 * seconds / count,
        "batch_latency_ms": 1000 * seconds / count * batch,
    }


def search_ratio(
    detector: Detector, kind: str, data: ImageSet | SeriesSet, size: Size = SIZES["full"]
) -> dict[str, float]:
    """AnoGAN's latent search over a whole batch against the same search one sample at a time."""
    x = encode(detector.spec, _items(kind, data, size.count(SEARCH_BATCH[kind])), stride=1).x
    model = detector.model
    model.search(x[:1])
    batched = _timed(lambda: model.search(x)) / len(x)
    singles = size.count(SEARCH_SINGLES[kind])
    single = _timed(lambda: [model.search(x[i : i + 1]) for i in range(singles)]) / singles
    return {
        "batch": len(x),
        "batched_ms": 1000 * batched,
        "single_ms": 1000 * single,
        "ratio": single / batched,
        "search_steps": detector.params.search_steps,
    }


def network_forward_rate(detector: Detector, x: np.ndarray, trials: int = 5) -> float:
    """The networks alone (``sample_components``: no preprocessing, pooling or normalisation), samples/s.

    Best of several trials, like the peak it is compared with: both ask what the machine can do when
    the neighbours on the shared CPU leave it alone.
    """
    detector.sample_components(x)
    return len(x) / min(_timed(lambda: detector.sample_components(x)) for _ in range(trials))


def run(
    docs: Path = DOCS,
    command: str = "python -m benchmarks speed",
    log: Callable[[str], None] = print,
    size: Size = SIZES["full"],
) -> dict[str, Any]:
    """Measure everything, write the ``Speed suite`` section and ``speed.json``."""
    import keras

    keras.utils.set_random_seed(0)
    started = time.perf_counter()
    peak = measure_peak(size.peak_n)
    log(f"peak {peak:.1f} GFLOP/s")
    pixels, scored = size.image_size, size.count(ITEMS[("images", 256)])
    inputs: dict[str, tuple[Callable[[], ImageSpec | SeriesSpec], ImageSet | SeriesSet, ImageSet | SeriesSet]] = {
        "images": (
            lambda: ImageSpec(image_size=pixels),
            textures(size.train_images, size=pixels),
            textures(scored, seed=1, size=pixels),
        ),
        "windows": (
            lambda: SeriesSpec(window=WINDOW, stride=4),
            sensor_windows(size.train_steps),
            sensor_windows(size.count(ITEMS[("windows", 256)]) + WINDOW),
        ),
    }
    results: dict[str, Any] = {
        "machine": describe_machine(),
        "command": command,
        "size": size.name,
        "peak_gflops": peak,
        "detectors": {},
        "search": {},
    }
    for kind, (make_spec, train, score_data) in inputs.items():
        for label, name, overrides in DETECTORS[kind]:
            detector = _detector(name, make_spec(), {**size.options.get(name, {}), **overrides})
            detector.fit(train)
            x = encode(detector.spec, train).x
            entry: dict[str, Any] = {"train_per_second": train_rate(detector, x), "train_samples": len(x)}
            for batch in BATCH_SIZES:
                entry[f"batch_{batch}"] = score_rate(detector, kind, score_data, batch, size)
            if name == "ganomaly":
                flops = ganomaly_forward_flops(detector)
                network = network_forward_rate(
                    detector, encode(detector.spec, _items(kind, score_data, size.count(256)), stride=1).x
                )
                entry["forward_flops"] = flops
                entry["network_per_second"] = network
                entry["gflops_end_to_end"] = flops * entry["batch_256"]["per_second"] / 1e9
                entry["gflops_network"] = flops * network / 1e9
            if name == "anogan":
                results["search"][kind] = search_ratio(detector, kind, score_data, size)
            results["detectors"].setdefault(kind, {})[label] = entry
            log(
                f"{kind} {label}: train {entry['train_per_second']:.0f}/s, score "
                f"{entry['batch_1']['per_second']:.0f}/s at 1, {entry['batch_256']['per_second']:.0f}/s at 256"
            )
    # Measured again at the end: a neighbour's burst during the first measurement would understate the peak.
    results["peak_gflops_end"] = measure_peak(size.peak_n)
    results["peak_gflops"] = max(peak, results["peak_gflops_end"])
    results["seconds"] = time.perf_counter() - started
    write_raw("speed", results, docs.with_suffix(""))
    write_section("Speed suite", render(results), docs)
    return results


def rerender(docs: Path = DOCS) -> list[str]:
    """Rewrite the speed section from ``speed.json`` when it exists, measuring nothing."""
    path = docs.with_suffix("") / "speed.json"
    if not path.exists():
        return []
    write_section("Speed suite", render(json.loads(path.read_text())), docs)
    return ["Speed suite"]


def render(results: dict[str, Any]) -> str:
    rows = []
    for kind, by_name in results["detectors"].items():
        for name, e in by_name.items():
            b1, b256 = e["batch_1"], e["batch_256"]
            rows.append(
                [
                    kind,
                    name,
                    f"{e['train_per_second']:,.0f}",
                    f"{10_000 / e['train_per_second']:,.1f}",
                    f"{b1['per_second']:,.0f}",
                    f"{b1['latency_ms']:.2f}",
                    f"{b256['per_second']:,.0f}",
                    f"{b256['latency_ms']:.3f}",
                    f"{b256['batch_latency_ms']:,.0f}",
                ]
            )
    search_rows = [
        [
            kind,
            s["search_steps"],
            s["batch"],
            f"{s['batched_ms']:.2f}",
            f"{s['single_ms']:.1f}",
            f"{s['ratio']:.0f}×",
            "yes" if s["ratio"] >= TARGET_SEARCH_RATIO else "**no**",
        ]
        for kind, s in results["search"].items()
    ]
    flop_rows = []
    for kind, by_name in results["detectors"].items():
        for label, g in by_name.items():
            if "forward_flops" not in g:
                continue
            flop_rows.append(
                [
                    kind,
                    label,
                    f"{g['forward_flops'] / 1e6:,.1f}",
                    f"{g['network_per_second']:,.0f}",
                    f"{g['gflops_network']:.1f}",
                    f"{g['gflops_end_to_end']:.1f}",
                    f"{100 * g['gflops_network'] / results['peak_gflops']:.0f}%",
                ]
            )
    target_rows, needs = [], []
    for kind, goal in TARGETS.items():
        for label, g in results["detectors"].get(kind, {}).items():
            if "forward_flops" not in g:
                continue
            rate = g["batch_256"]["per_second"]
            target_rows.append(
                [
                    f"GANomaly scoring ≥ {goal:,.0f} {kind}/s (`{label}`)",
                    f"{rate:,.0f}/s",
                    "yes" if rate >= goal else "**no**",
                ]
            )
            needed = goal * g["forward_flops"] / 1e9
            needs.append(
                f"`{label}` on {kind} needs {needed:,.1f} GFLOP/s for {goal:,.0f}/s "
                f"({100 * needed / results['peak_gflops']:.0f}% of the measured peak)"
            )
    for kind, s in results["search"].items():
        target_rows.append(
            [
                f"AnoGAN batched search ≥ {TARGET_SEARCH_RATIO:.0f}× one-at-a-time ({kind})",
                f"{s['ratio']:.0f}×",
                "yes" if s["ratio"] >= TARGET_SEARCH_RATIO else "**no**",
            ]
        )
    return "\n\n".join(
        [
            f"Command: `{results['command']}` — {results['machine']}; {results['seconds'] / 60:.1f} min in all. "
            "Shared 2-core machine: other jobs may have run at the same time, so treat rates as lower bounds.",
            f"Every detector with its default options (network width {DEFAULT_WIDTH['image']} on images and "
            f"{DEFAULT_WIDTH['series']} on windows; GANomaly "
            "latent 100; AnoGAN latent 64, 50 search steps from the encoder's start; baselines as in the quality suite) on 64×64 grayscale images "
            "(`images`) and 32-step windows of SMD machine-2-2, 38 channels (`windows`). Training: samples/s from the median of "
            f"{TIMED_TRAIN_STEPS} timed steps of batch {TRAIN_BATCH} after the traced first ones (scikit-learn "
            "baselines and the autoencoder: one full pass), and the seconds one epoch of 10,000 samples takes at "
            "that rate. Scoring: `Detector.score` end to end at `score_batch_size` 1 and 256, timed on a second pass "
            "over the same items (AnoGAN: after one item); latency per sample "
            "is seconds/items, batch latency the time one batch of 256 takes.",
            table(
                [
                    "input",
                    "detector",
                    "train samples/s",
                    "s per 10k-sample epoch",
                    "score/s @1",
                    "ms/sample @1",
                    "score/s @256",
                    "ms/sample @256",
                    "ms/batch @256",
                ],
                rows,
            ),
            "AnoGAN latent search, the same steps over a whole batch at once (`model.search`) against one sample "
            "per call:",
            table(
                ["input", "search steps", "batch", "ms/sample batched", "ms/sample one at a time", "ratio", "≥ 50×"],
                search_rows,
            ),
            f"GANomaly forward pass against the measured peak ({results['peak_gflops']:.0f} GFLOP/s, best of 5 "
            "4096×4096 float32 matmuls in TensorFlow, measured at the start and at the end of the run). FLOPs per sample count encoder, decoder, second encoder and "
            "the discriminator body on x and x̂; `network` is the best of 5 timings of the networks alone "
            "(`sample_components`) on a batch of 256, `end to end` the whole `Detector.score` rate above:",
            table(
                [
                    "input",
                    "detector",
                    "MFLOP/sample",
                    "network samples/s",
                    "GFLOP/s network",
                    "GFLOP/s end to end",
                    "network / peak",
                ],
                flop_rows,
            ),
            "A ratio above 100% means the matmul understated the machine: on this shared VM neighbours' load "
            "moves it between runs, and the small dense matmuls of the window networks stay in cache where a "
            "4096×4096 one cannot. Read the column as relative, not as a hard ceiling.",
            "Targets (issue 6):",
            table(["target", "measured", "met"], target_rows),
            "What was tried: batching (256 items per call against 1), a narrower image network (width 16, now "
            "the default for images: a quarter of width 32's FLOPs), and for the search batches of "
            f"{SEARCH_BATCH['images']} images and {SEARCH_BATCH['windows']:,} windows. "
            "What the targets cost: " + "; ".join(needs) + ". Where the network already runs near the measured "
            "peak (table above), only fewer FLOPs per image — a narrower network — can meet the image target on "
            "this CPU; the search ratio on a CPU is bounded by how much per-call overhead a batch amortises, "
            "because the search itself is compute-bound once a batch fills the cores. Window scoring "
            "was once timed on the first pass over 16,384 windows after a one-batch warm-up, and measured "
            "14,500–21,500 windows/s; that first pass runs about 40% slower than the ones after it (three passes in "
            "a row: 20,700, 32,000 and 35,900 windows/s), so scoring is now timed on a second pass, the state a "
            "running stream scorer is in. TensorFlow's execution of the networks is most of the remaining time.",
        ]
    )
