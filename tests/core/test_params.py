"""Detector options: ``--set`` text to typed values, the declared bounds, and the description users read."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from anomaly.errors import AnomalyError
from anomaly.params import check_params, describe_params, option, option_line, parse_params


@dataclass
class Params:
    width: int = option(8, help="filters", low=1, high=64)
    rate: float = option(0.1, help="step size", above=0.0)
    loss: str = option("l2", help="loss", choices=("l1", "l2"))
    noisy: bool = option(False, help="add noise")
    latent: int | None = option(None, help="latent size")
    weights: dict[str, float] = option(default_factory=dict, help="score weights")
    plain: int = field(default=3)


def test_params_parse_types_and_reject_unknown_keys() -> None:
    from anomaly_plugins.anogan.detector import AnoGANParams

    params = parse_params(AnoGANParams, ["width=8", "encoder_init=false", "lam=0.2", "score_weights=reconstruction:1"])
    assert params.width == 8 and params.encoder_init is False and params.lam == 0.2
    assert params.score_weights == {"reconstruction": 1.0}
    with pytest.raises(Exception, match="accepts"):
        parse_params(AnoGANParams, ["nope=1"])


def test_text_becomes_the_annotated_type() -> None:
    params = parse_params(Params, ["width=16", "rate=0.5", "loss=l1", "noisy=yes", "latent=auto", "plain=-2"])
    assert params == Params(width=16, rate=0.5, loss="l1", noisy=True, latent=None, plain=-2)
    assert parse_params(Params, ["noisy=OFF", "latent=4", "weights=a:1, b:0.5"]) == Params(
        noisy=False, latent=4, weights={"a": 1.0, "b": 0.5}
    )


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("width", "--set expects KEY=VALUE, got 'width'"),
        ("width=wide", "option width='wide': expected an integer"),
        ("rate=fast", "option rate='fast': expected a number"),
        ("noisy=maybe", "option noisy='maybe': expected true or false"),
        ("width=100", r"width must be from 1 to 64 \(got 100\)"),
        ("rate=0", r"rate must be > 0 \(got 0.0\)"),
        ("rate=nan", "rate must be > 0"),
        ("loss=huber", r"loss must be one of l1, l2 \(got 'huber'\)"),
        ("weights=a", "expected COMPONENT:WEIGHT"),
        ("weights=a:heavy", "weight 'heavy' of a is not a number"),
        ("weights=a:-1", "weights must be finite and >= 0"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_option(item: str, message: str) -> None:
    with pytest.raises(AnomalyError, match=message):
        parse_params(Params, [item])


def test_weights_must_name_the_detectors_components() -> None:
    assert parse_params(Params, ["weights=a:1"], components=("a", "b")).weights == {"a": 1.0}
    with pytest.raises(AnomalyError, match="unknown component[(]s[)] c; this detector has a, b"):
        parse_params(Params, ["weights=c:1"], components=("a", "b"))


def test_values_set_in_python_are_checked_too() -> None:
    with pytest.raises(AnomalyError, match="width must be an integer, not 2.5"):
        check_params(Params(width=2.5))  # type: ignore[arg-type]
    with pytest.raises(AnomalyError, match="width must be an integer, not True"):
        check_params(Params(width=True))


def test_the_description_lists_each_option_with_its_bounds() -> None:
    described = {entry["name"]: entry for entry in describe_params(Params)}
    assert described["width"] == {"name": "width", "type": "int", "default": 8, "help": "filters", "low": 1, "high": 64}
    assert described["latent"]["default"] == "auto"
    assert described["plain"] == {"name": "plain", "type": "int", "default": 3, "help": ""}
    assert [option_line(described[name]) for name in ("width", "rate", "loss", "noisy", "weights", "plain")] == [
        "width=8  (int, from 1 to 64)  filters",
        "rate=0.1  (float, > 0)  step size",
        "loss=l2  (str, one of l1|l2)  loss",
        "noisy=false  (bool)  add noise",
        "weights=detector default  (weights)  score weights",
        "plain=3  (int)",
    ]
