"""The shipped model's guard on real paediatric X-rays: none is called "not a chest X-ray".

Each witness is checked on its own as well as together, so the test fails when either is
loosened: the feature distance alone (`NOT_AN_XRAY_DISTANCE_RATIO`) must leave every X-ray below
its ratio, and the chest layout alone must find every X-ray chest-like. Needs the shared data.
"""

from __future__ import annotations

import numpy as np
import pytest

from pneumonet_core.data import load_images, scan_dataset
from pneumonet_core.inference import looks_like_chest, ood, ood_checks
from pneumonet_core.inference.predict import Predictor
from pneumonet_core.utils import config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shipped_on_real_xrays(real_data):
    """The shipped predictor, and the model inputs of the validation split, val/ and test/."""
    predictor = Predictor(config.shipped_model_path())
    _, validation = ood.model_training_split(predictor.metadata, real_data)
    paths = list(validation["path"])
    for split in ("val", "test"):
        paths += list(scan_dataset(real_data / split).frame["path"])
    images = load_images(paths, predictor.image_size).images
    return predictor, images


def test_no_real_x_ray_is_worded_not_a_chest_x_ray(shipped_on_real_xrays):
    predictor, images = shipped_on_real_xrays
    assert len(images) > 1300  # the validation split (1,044), test/ (314) and val/ (16)
    _, reasons = predictor.predict_arrays_with_ood(images)
    kinds = [ood.reason_kind(reason) for reason in reasons if reason is not None]
    assert kinds.count(ood.NOT_A_CHEST_XRAY) == 0


def test_the_feature_distance_alone_calls_no_real_x_ray_a_non_x_ray(shipped_on_real_xrays):
    predictor, images = shipped_on_real_xrays
    statistics = predictor.ood_statistics
    ratios = statistics.distances(ood.compute_features(predictor.model, images))
    ratios /= statistics.threshold
    assert ratios.max() < ood_checks.NOT_AN_XRAY_DISTANCE_RATIO, (
        f"an X-ray at {ratios.max():.2f} times the threshold"
    )


def test_the_chest_layout_alone_finds_every_real_x_ray_chest_like(shipped_on_real_xrays):
    _, images = shipped_on_real_xrays
    unlike = [index for index, image in enumerate(images) if not looks_like_chest(image)]
    assert unlike == []
    assert np.all(np.isfinite(images))
