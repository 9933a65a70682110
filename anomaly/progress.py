"""Progress display for long training: a bar per run with running losses, on stderr."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


def _fmt(logs: dict[str, float]) -> str:
    return "  ".join(f"{k}={v:.4g}" for k, v in logs.items() if k != "epoch")


class TrainingProgress:
    """A context manager; disabled it does nothing, so library callers and tests stay quiet."""

    def __init__(self, name: str, epochs: int, steps_per_epoch: int, enabled: bool = True) -> None:
        self.enabled = enabled
        self.name = name
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch
        self.finished = 0
        self.console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[logs]}"),
            console=self.console,
            disable=not enabled,
        )
        self.task = self.progress.add_task(f"{name} epoch 1/{epochs}", total=epochs * steps_per_epoch, logs="")

    def __enter__(self) -> TrainingProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def step(self, done: int, logs: dict[str, float]) -> None:
        """``done`` steps of the current epoch are finished; ``logs`` are their mean losses."""
        self.progress.update(self.task, completed=self.finished + done, logs=_fmt(logs))

    def epoch_done(self, epoch: int, logs: dict[str, float]) -> None:
        self.finished = epoch * self.steps_per_epoch
        self.progress.update(
            self.task,
            completed=self.finished,
            description=f"{self.name} epoch {min(epoch + 1, self.epochs)}/{self.epochs}",
        )
        if self.enabled:
            self.progress.console.print(f"epoch {epoch}: {_fmt(logs)}", highlight=False)
