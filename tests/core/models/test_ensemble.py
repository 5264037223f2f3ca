"""ensemble: several models as one .keras file, Grad-CAM and the OOD guard still working."""

from __future__ import annotations

import numpy as np
import pytest

from pneumonet_core.models.architectures import build_model
from pneumonet_core.models.ensemble import build_ensemble, fit_platt, member_logits

SIZE = 48


@pytest.fixture(scope="module")
def members():
    import keras

    keras.utils.set_random_seed(0)
    return [build_model("pneumonet", SIZE, 0.0) for _ in range(3)]


def random_images(count: int = 6) -> np.ndarray:
    return np.random.default_rng(1).random((count, SIZE, SIZE, 1), dtype=np.float32)


def test_ensemble_probability_is_the_sigmoid_of_the_mean_member_logit(members):
    images = random_images()
    expected = 1 / (1 + np.exp(-member_logits(members, images).mean(axis=1)))
    ensemble = build_ensemble(members)
    np.testing.assert_allclose(np.asarray(ensemble(images)).ravel(), expected, atol=1e-4)


def test_platt_scaling_is_folded_into_the_output(members):
    images = random_images()
    logits = member_logits(members, images).mean(axis=1)
    ensemble = build_ensemble(members, platt_scale=2.0, platt_shift=-0.5)
    expected = 1 / (1 + np.exp(-(2.0 * logits - 0.5)))
    np.testing.assert_allclose(np.asarray(ensemble(images)).ravel(), expected, atol=1e-4)


def test_ensemble_saves_loads_in_safe_mode_and_explains(members, tmp_path):
    from pneumonet_core.inference.explain import grad_cam
    from pneumonet_core.inference.ood import compute_features
    from pneumonet_core.models.modelio import ModelMetadata, load_model, save_model

    path = tmp_path / "ensemble.keras"
    save_model(
        build_ensemble(members), path, ModelMetadata(architecture="ensemble", image_size=SIZE)
    )
    model, _ = load_model(path)
    images = random_images(2)
    heatmap = grad_cam(model, images[0])
    assert heatmap.shape == (SIZE, SIZE) and heatmap.min() >= 0 and heatmap.max() <= 1
    assert compute_features(model, images).shape == (2, 3 * 512)


def test_unsupported_members_are_refused(members):
    with pytest.raises(ValueError, match="at least 2"):
        build_ensemble(members[:1])
    with pytest.raises(ValueError, match="global average"):
        build_ensemble([members[0], build_model("seed", SIZE)])
    with pytest.raises(ValueError, match="input shape"):
        build_ensemble([members[0], build_model("pneumonet", SIZE + 16)])
    with pytest.raises(ValueError, match="platt_scale"):
        build_ensemble(members, platt_scale=0.0)


def test_fit_platt_recovers_a_known_calibration():
    generator = np.random.default_rng(0)
    logits = generator.normal(0, 3, size=4000)
    true_logits = 0.5 * logits + 1.0
    labels = (generator.random(4000) < 1 / (1 + np.exp(-true_logits))).astype(int)
    scale, shift = fit_platt(labels, logits)
    assert scale == pytest.approx(0.5, abs=0.08)
    assert shift == pytest.approx(1.0, abs=0.15)
    with pytest.raises(ValueError, match="both classes"):
        fit_platt(np.zeros(10), logits[:10])
