"""README examples run as written: every ``anomaly`` command of its bash blocks, on tiny stand-ins for the data.

Paths into ``../shared/data`` are swapped for tiny folders and files of the same layout, and every
training is cut to one epoch of width-4 networks on 16-pixel tiles, so the whole README runs in
seconds. Lines that set up the machine (``pip install``, ``bash scripts/...``) and blocks that need a
Kafka broker (``scripts/kafka.sh``, ``anomaly serve``, ``anomaly produce``) are left to the scripts
and the stream tests.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

README = Path(__file__).resolve().parents[1] / "README.md"
BROKER_ONLY = ("scripts/kafka.sh", "anomaly serve", "anomaly produce")
FAST_TRAINING = [
    "--epochs",
    "1",
    "--set",
    "width=4",
    "--set",
    "latent=4",
    "--no-progress",
    "--image-size",
    "16",
    "--scale",
    "32",
]


def readme_commands() -> list[str]:
    """The ``anomaly`` command lines of README.md's bash blocks that run without a broker, comments stripped."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S):
        if any(marker in block for marker in BROKER_ONLY):
            continue
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith("anomaly "):
                commands.append(line)
    return commands


def tiny_magnetic_tile(root: Path) -> Path:
    """magnetic_tile's layout: class folders of JPEGs under Imgs/, each defect with its PNG mask beside it."""
    rng = np.random.default_rng(0)
    for name, count in (("MT_Free", 8), ("MT_Crack", 3)):
        folder = root / name / "Imgs"
        folder.mkdir(parents=True)
        for i in range(count):
            picture = np.clip(rng.normal(120, 10, (40, 40)), 0, 255).astype(np.uint8)
            mask = np.zeros((40, 40), np.uint8)
            if name != "MT_Free":
                picture[10:30, 18:22] = 20
                mask[10:30, 18:22] = 255
                Image.fromarray(mask).save(folder / f"exp{i}.png")
            Image.fromarray(picture).save(folder / f"exp{i}.jpg")
    return root


def tiny_smd(path: Path) -> Path:
    """SMD's layout: train, test and test_label arrays."""
    t = np.arange(300)[:, None]
    train = np.sin(t / (4 + np.arange(3)))
    test = train.copy()
    labels = np.zeros(300, np.int8)
    test[150:160] += 3
    labels[150:160] = 1
    path.parent.mkdir(parents=True)
    np.savez(path, train=train, test=test, test_label=labels)
    return path


def as_run_here(line: str, data: dict[str, Path]) -> list[str]:
    """A README line with tiny data in place of ``../shared/data`` and a one-epoch training."""
    for shared, tiny in data.items():
        line = line.replace(shared, str(tiny))
    args = shlex.split(line)[1:]
    if args[0] == "train":
        if "--epochs" in args:
            del args[args.index("--epochs") : args.index("--epochs") + 2]
        args += FAST_TRAINING
    return args


def test_readme_has_commands_to_run() -> None:
    lines = readme_commands()
    assert any(line.startswith("anomaly train") for line in lines)
    assert any(line.startswith("anomaly evaluate") for line in lines)


def test_readme_commands_run_as_written(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = {
        "../shared/data/magnetic_tile": tiny_magnetic_tile(tmp_path / "data" / "magnetic_tile"),
        "../shared/data/smd/machine-2-2.npz": tiny_smd(tmp_path / "data" / "smd" / "machine-2-2.npz"),
    }
    monkeypatch.chdir(tmp_path)
    for line in readme_commands():
        assert "../shared" not in " ".join(as_run_here(line, data)), f"no tiny stand-in for the data of: {line}"
        result = cli(*as_run_here(line, data))
        assert result.exit_code == 0, f"{line}\n{result.output}"
