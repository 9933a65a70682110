"""``anomaly report``: a model's evaluation on labelled data as one self-contained HTML file.

The numbers are ``anomaly.evaluation.evaluate``'s (pooled and per defect type, pixel metrics where
masks exist); the figures come from one more scoring pass that keeps the per-item scores and maps.
Every figure is a matplotlib PNG embedded as a data URI, so the file can be mailed or archived and
still opens anywhere, with nothing fetched.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from jinja2 import Environment, PackageLoader, select_autoescape
from sklearn.metrics import precision_recall_curve, roc_curve

from anomaly import maps
from anomaly.data.images import ImageSet
from anomaly.data.load import load_dataset
from anomaly.data.series import SeriesSet
from anomaly.detector import Detector
from anomaly.evaluation import evaluate
from anomaly.inputs import SeriesSpec
from anomaly.plugins import load_model
from anomaly.scores import Scores
from anomaly.ui import figures

REPORT = "report.html"


@dataclass
class Sample:
    """One of the highest-scoring items: its id, score, true label and picture (data URI)."""

    id: str
    score: float
    label: int
    kind: str
    picture: str


def write_report(
    model_dir: Path, data_path: Path, out: Path, *, top: int = 8, split: str = "test", normal_class: str = "good"
) -> Path:
    """Evaluate the model at ``model_dir`` on ``data_path`` and write ``out/report.html``; return its path."""
    results = evaluate(model_dir, data_path, split=split, normal_class=normal_class)
    model = load_model(model_dir)
    data = load_dataset(data_path, split=split, normal_class=normal_class, with_masks=True)
    if isinstance(data, ImageSet):
        # The same items evaluate kept: those the model was trained on say nothing about it.
        trained = set(model.training.data.trained_ids if model.training and model.training.data else [])
        data = data.subset([i for i, item_id in enumerate(data.ids) if item_id not in trained])
    assert data.labels is not None  # evaluate refused unlabelled data
    scores = model.score(data, maps=isinstance(data, ImageSet), stride=1)
    labels = data.labels[scores.steps] if isinstance(data, SeriesSet) else data.labels
    threshold = float(scores.threshold)
    roc_x, roc_y, _ = roc_curve(labels, scores.scores)
    precision, recall, _ = precision_recall_curve(labels, scores.scores)
    curves = {
        "roc": figures.data_uri(
            figures.curve(
                roc_x, roc_y, xlabel="false positive rate", ylabel="true positive rate", title="ROC", diagonal=True
            )
        ),
        "pr": figures.data_uri(
            figures.curve(recall, precision, xlabel="recall", ylabel="precision", title="Precision-recall")
        ),
    }
    histogram = figures.data_uri(
        figures.histogram(
            {"normal": scores.scores[labels == 0], "anomalous": scores.scores[labels == 1]},
            threshold,
            title="Scores of normal and anomalous items",
        )
    )
    samples = _top_samples(model, data, scores, labels, top)
    html = (
        _environment()
        .get_template("report.html")
        .render(
            report=results,
            model=model,
            modality=data.modality,
            curves=curves,
            histogram=histogram,
            samples=samples,
            threshold=threshold,
            metric_names=_metric_names(results["results"]),
        )
    )
    out.mkdir(parents=True, exist_ok=True)
    path = out / REPORT
    path.write_text(html, encoding="utf-8")
    return path


def _environment() -> Environment:
    return Environment(loader=PackageLoader("anomaly.ui", "templates"), autoescape=select_autoescape(["html"]))


def _metric_names(results: dict[str, dict[str, Any]]) -> list[str]:
    """The columns of the results table: every metric any subset has, in first-seen order."""
    return list(dict.fromkeys(name for metrics in results.values() for name in metrics))


def _top_samples(
    model: Detector, data: ImageSet | SeriesSet, scores: Scores, labels: np.ndarray, top: int
) -> list[Sample]:
    order = np.argsort(-scores.scores, kind="stable")[:top]
    threshold = float(scores.threshold)
    samples = []
    for i in order:
        score = float(scores.scores[i])
        if isinstance(data, ImageSet):
            assert scores.maps is not None
            picture = maps.picture(
                data.images[i],
                scores.maps[i],
                scale=model.map_scale or 1.0,
                score=score,
                threshold=threshold,
                mask=data.masks[i] if data.masks else None,
                title=data.ids[i],
            )
            kind = data.kinds[i] if data.kinds else ""
        else:
            picture = _trace(model, data, scores, int(i))
            kind = ""
        samples.append(Sample(scores.ids[i], score, int(labels[i]), kind, figures.data_uri(picture)))
    return samples


def _trace(model: Detector, data: SeriesSet, scores: Scores, i: int) -> bytes:
    """The window a series score ends, with the scores of the steps inside it."""
    assert scores.steps is not None and isinstance(model.spec, SeriesSpec)
    end = int(scores.steps[i])
    start = max(0, end - model.spec.window + 1)
    steps = list(range(start, end + 1))
    by_step = dict(zip(scores.steps.tolist(), scores.scores.tolist()))
    return figures.series(
        steps,
        data.values[start : end + 1],
        [by_step.get(step, float("nan")) for step in steps],
        float(scores.threshold),
        marked=end,
        title=f"window ending at step {end} ({data.ids[end]})",
    )
