"""The GPU-scale sweep trains the product's own GANomaly (any backend) and scores every way it names."""

from __future__ import annotations

from experiments import gpu_tiles


def test_a_tiny_run_trains_the_product_detector_and_scores_each_way(shared_data) -> None:
    result = gpu_tiles.run_one(seed=0, width=4, epochs=1, batch=32, limit=6)
    names = {"latent", "reconstruction", "discriminator", "memory", gpu_tiles.SMOOTHED, "latent + smoothed residual"}
    assert set(result["auroc"]) == {f"{n}, {how}" for n in names for how in ("topk", "max")}
    assert all(0.0 <= v <= 1.0 for v in result["auroc"].values())
    assert result["device"] == "cpu" and result["train_images"] > 0
    assert len(result["labels"]) == len(result["image_scores"]["memory, max"])
