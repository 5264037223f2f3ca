"""data: dataset discovery, patient ids, the patient-grouped split, loading and pipelines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pneumonet_core.data import (
    FRAME_COLUMNS,
    DatasetError,
    class_weights,
    data_fingerprint,
    load_images,
    make_dataset,
    patient_id,
    scan_dataset,
    split_by_patient,
    stratified_subset,
    training_split,
)

# --- patient ids -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("person12_bacteria_47.jpeg", "person12"),
        ("person1000_virus_1681.jpeg", "person1000"),
        ("PERSON3_Virus_5.JPEG", "person3"),
        ("IM-0117-0001.jpeg", "IM-0117"),
        ("im-0117-0002.jpeg", "IM-0117"),
        ("NORMAL2-IM-0587-0001-0002.jpeg", "IM-0587"),
        ("/some/folder/train/NORMAL/IM-0115-0001.jpeg", "IM-0115"),
        ("scan_from_clinic.png", "scan_from_clinic"),
        ("person_unknown.jpeg", "person_unknown"),
    ],
)
def test_patient_id_examples(filename, expected):
    assert patient_id(filename) == expected


def test_unknown_names_are_their_own_patients():
    assert patient_id("a.jpeg") != patient_id("b.jpeg")


# --- scanning --------------------------------------------------------------------------------


def test_scan_dataset_counts_a_synthetic_layout(dataset_factory):
    root = dataset_factory(per_class=6, splits=("train", "val"))
    scan = scan_dataset(root)
    assert list(scan.frame.columns) == FRAME_COLUMNS
    assert scan.problems == []
    counts = scan.counts()
    assert counts.loc["train", "NORMAL"] == 6
    assert counts.loc["train", "PNEUMONIA"] == 6
    assert counts.loc["val", "total"] == 12
    assert len(scan.split("train")) == 12 and scan.split("test").empty
    pneumonia = scan.frame[scan.frame["label"] == "PNEUMONIA"]
    assert (pneumonia["label_index"] == 1).all()
    assert pneumonia["patient_id"].str.startswith("person").all()
    normal = scan.frame[scan.frame["label"] == "NORMAL"]
    assert (normal["label_index"] == 0).all()
    assert normal["patient_id"].str.startswith("IM-").all()


def test_scan_dataset_reports_missing_and_empty_folders_and_foreign_files(dataset_factory):
    root = dataset_factory(per_class=3, splits=("train", "val"))
    for path in (root / "val" / "PNEUMONIA").iterdir():
        path.unlink()
    (root / "val" / "PNEUMONIA").rmdir()
    for path in (root / "val" / "NORMAL").iterdir():
        path.unlink()
    foreign = root / "train" / "NORMAL" / "notes.txt"
    foreign.write_text("not an image")
    (root / "train" / "NORMAL" / ".DS_Store").write_bytes(b"\0")
    scan = scan_dataset(root)
    problems = "\n".join(scan.problems)
    assert len(scan.problems) == 3, problems
    assert f"{root / 'val' / 'PNEUMONIA'}: missing class folder" in problems
    assert f"{root / 'val' / 'NORMAL'}: no images" in problems
    assert f"{foreign}: not an image file name" in problems
    assert scan.counts().loc["train", "total"] == 6
    assert "val" not in scan.counts().index


def test_scan_dataset_accepts_a_single_split_folder(dataset_factory):
    root = dataset_factory(per_class=2, splits=("val",))
    scan = scan_dataset(root / "val")
    assert set(scan.frame["split"]) == {"val"}
    assert len(scan.frame) == 4


def test_scan_dataset_missing_root_names_it(tmp_path):
    missing = tmp_path / "no_such_dataset"
    with pytest.raises(DatasetError, match="does not exist") as caught:
        scan_dataset(missing)
    assert str(missing) in str(caught.value)


def test_scan_dataset_folder_without_splits_raises(tmp_path):
    (tmp_path / "random").mkdir()
    with pytest.raises(DatasetError, match="neither train/") as caught:
        scan_dataset(tmp_path)
    assert str(tmp_path) in str(caught.value)


# --- patient split ---------------------------------------------------------------------------


def synthetic_frame(n_patients: int = 60, seed: int = 0) -> pd.DataFrame:
    """1 : 3 NORMAL : PNEUMONIA patients, one to four images each."""
    rng = np.random.default_rng(seed)
    rows = []
    for patient in range(n_patients):
        label_index = int(patient % 4 != 0)
        for image in range(int(rng.integers(1, 5))):
            rows.append(
                {
                    "path": f"/data/p{patient}_{image}.jpeg",
                    "split": "train",
                    "label": ("NORMAL", "PNEUMONIA")[label_index],
                    "label_index": label_index,
                    "patient_id": f"p{patient}",
                }
            )
    return pd.DataFrame(rows, columns=FRAME_COLUMNS)


def test_split_by_patient_never_puts_a_patient_on_both_sides():
    frame = synthetic_frame()
    train, val = split_by_patient(frame, val_fraction=0.2, seed=1)
    assert not set(train["patient_id"]) & set(val["patient_id"])
    assert len(train) + len(val) == len(frame)
    assert sorted(train["path"].tolist() + val["path"].tolist()) == sorted(frame["path"])
    assert list(train.index) == list(range(len(train)))  # fresh index


def test_split_by_patient_is_deterministic_for_a_seed_and_varies_with_it():
    frame = synthetic_frame()
    first_train, first_val = split_by_patient(frame, val_fraction=0.2, seed=5)
    again_train, again_val = split_by_patient(frame, val_fraction=0.2, seed=5)
    pd.testing.assert_frame_equal(first_val, again_val)
    pd.testing.assert_frame_equal(first_train, again_train)
    _, other_val = split_by_patient(frame, val_fraction=0.2, seed=6)
    assert set(other_val["path"]) != set(first_val["path"])


def test_split_by_patient_is_stratified_and_about_the_right_size():
    frame = synthetic_frame(n_patients=200, seed=2)
    train, val = split_by_patient(frame, val_fraction=0.25, seed=0)
    overall = frame["label_index"].mean()
    assert abs(val["label_index"].mean() - overall) < 0.05
    assert abs(train["label_index"].mean() - overall) < 0.05
    assert abs(len(val) / len(frame) - 0.25) < 0.05


@pytest.mark.parametrize("bad", [0.0, -0.1, 0.6, 1.0])
def test_split_by_patient_rejects_bad_fractions(bad):
    with pytest.raises(ValueError, match="val_fraction") as caught:
        split_by_patient(synthetic_frame(), val_fraction=bad)
    assert repr(bad) in str(caught.value)


def test_split_by_patient_needs_enough_patients():
    frame = synthetic_frame(n_patients=3)
    with pytest.raises(ValueError, match="need at least 5 patients .* found 3"):
        split_by_patient(frame, val_fraction=0.2)


def test_real_training_images_split_without_patient_leakage(real_data):
    frame = scan_dataset(real_data / "train").frame
    assert len(frame) > 1000
    # Every real file name carries a patient id (none falls back to its own stem).
    assert frame["patient_id"].str.match(r"^(person\d+|IM-\d{4})$").all()
    assert frame["patient_id"].nunique() < len(frame)  # patients with several images exist
    train, val = split_by_patient(frame, val_fraction=0.2, seed=42)
    shared = set(train["patient_id"]) & set(val["patient_id"])
    assert not shared, f"patients on both sides: {sorted(shared)[:10]}"
    assert len(train) + len(val) == len(frame)
    assert abs(len(val) / len(frame) - 0.2) < 0.03
    assert abs(val["label_index"].mean() - frame["label_index"].mean()) < 0.03


def test_training_split_is_the_patient_split_of_train(synthetic_data):
    train, val = training_split(synthetic_data, val_fraction=0.25, seed=3)
    expected = split_by_patient(
        scan_dataset(synthetic_data).split("train"), val_fraction=0.25, seed=3
    )
    pd.testing.assert_frame_equal(train, expected[0])
    pd.testing.assert_frame_equal(val, expected[1])
    assert set(train["split"]) == set(val["split"]) == {"train"}  # val/ is never mixed in


def test_training_split_takes_the_subset_before_splitting(synthetic_data):
    train, val = training_split(synthetic_data, val_fraction=0.25, seed=3, subset_per_class=10)
    assert len(train) + len(val) == 20
    assert not set(train["patient_id"]) & set(val["patient_id"])


def test_training_split_without_train_folder_names_the_root(dataset_factory):
    root = dataset_factory(splits=("val",))
    with pytest.raises(DatasetError, match=f"{root}.* has no train/ images"):
        training_split(root)


# --- subsets, weights, fingerprints ----------------------------------------------------------


def test_stratified_subset_takes_per_class_reproducibly():
    frame = synthetic_frame(n_patients=80)
    subset = stratified_subset(frame, per_class=10, seed=3)
    assert subset["label_index"].value_counts().to_dict() == {0: 10, 1: 10}
    pd.testing.assert_frame_equal(subset, stratified_subset(frame, per_class=10, seed=3))
    assert set(subset["path"]) != set(stratified_subset(frame, per_class=10, seed=4)["path"])
    with pytest.raises(ValueError, match="per_class must be at least 1, got 0"):
        stratified_subset(frame, per_class=0)


def test_class_weights_balance_one_to_three_labels():
    weights = class_weights([0] * 10 + [1] * 30)
    assert weights == pytest.approx({0: 40 / (2 * 10), 1: 40 / (2 * 30)})
    assert weights[0] == pytest.approx(2.0) and weights[1] == pytest.approx(2 / 3)


def test_class_weights_need_both_classes():
    with pytest.raises(ValueError, match=r"both classes, got only \[1\]"):
        class_weights([1, 1, 1])


def test_data_fingerprint_ignores_order_and_sees_content(tmp_path):
    first, second = tmp_path / "a.jpeg", tmp_path / "b.jpeg"
    first.write_bytes(b"one")
    second.write_bytes(b"two")
    fingerprint = data_fingerprint([first, second])
    assert len(fingerprint) == 64
    assert fingerprint == data_fingerprint([second, first])
    second.write_bytes(b"changed")
    assert data_fingerprint([first, second]) != fingerprint


# --- loading ---------------------------------------------------------------------------------


def test_load_images_keeps_order_and_shape(image_factory):
    paths = [image_factory(f"img{i}.png", label_index=i % 2, seed=i) for i in range(5)]
    loaded = load_images(paths, 32, workers=2)
    assert loaded.images.shape == (5, 32, 32, 1)
    assert loaded.images.dtype == np.float32
    assert loaded.kept.tolist() == [True] * 5 and loaded.errors == []
    # Bright-patch images (label 1) are brighter: the order follows the input paths.
    means = loaded.images.reshape(5, -1).mean(axis=1)
    assert means[1] > means[0] and means[3] > means[2] and means[3] > means[4]


def test_load_images_raise_names_the_corrupt_file(image_factory, corrupt_jpeg):
    paths = [image_factory("good.jpeg"), corrupt_jpeg]
    with pytest.raises(DatasetError, match="cannot read") as caught:
        load_images(paths, 32)
    assert str(corrupt_jpeg) in str(caught.value)


def test_load_images_skip_reports_the_corrupt_file_and_masks_it(image_factory, corrupt_jpeg):
    paths = [image_factory("good0.jpeg"), corrupt_jpeg, image_factory("good1.jpeg", seed=1)]
    loaded = load_images(paths, 32, on_error="skip")
    assert loaded.images.shape == (2, 32, 32, 1)
    assert loaded.kept.tolist() == [True, False, True]
    assert len(loaded.errors) == 1
    path, reason = loaded.errors[0]
    assert path == str(corrupt_jpeg)
    assert "not a recognised image" in reason


def test_load_images_all_unreadable_gives_an_empty_array(corrupt_jpeg):
    loaded = load_images([corrupt_jpeg], 32, on_error="skip")
    assert loaded.images.shape == (0, 32, 32, 1)
    assert loaded.kept.tolist() == [False]


def test_load_images_rejects_unknown_on_error(image_factory):
    with pytest.raises(ValueError, match="'ignore'"):
        load_images([image_factory("a.png")], 32, on_error="ignore")


# --- tf.data pipelines -----------------------------------------------------------------------


def numbered_images(n: int) -> np.ndarray:
    """Image i is constant i / n: its first pixel says which input it was."""
    return (np.arange(n, dtype=np.float32) / n)[:, None, None, None] * np.ones((1, 4, 4, 1))


def unbatch(dataset) -> tuple[np.ndarray, np.ndarray]:
    images, labels = zip(*[(x.numpy(), y.numpy()) for x, y in dataset], strict=True)
    return np.concatenate(images), np.concatenate(labels)


def test_evaluation_dataset_keeps_input_order():
    labels = np.random.default_rng(0).integers(0, 2, 21)
    dataset = make_dataset(numbered_images(21).astype(np.float32), labels, batch_size=8)
    batches = list(dataset)
    assert [len(y) for _, y in batches] == [8, 8, 5]
    images, out_labels = unbatch(dataset)
    assert out_labels.shape == (21, 1) and out_labels.dtype == np.float32
    np.testing.assert_array_equal(out_labels[:, 0], labels)
    np.testing.assert_allclose(images[:, 0, 0, 0], np.arange(21) / 21)


def test_training_dataset_shuffles_every_epoch_keeping_pairs():
    n = 32
    labels = np.arange(n) % 2
    dataset = make_dataset(
        numbered_images(n).astype(np.float32), labels, batch_size=8, training=True
    )
    first_images, first_labels = unbatch(dataset)
    second_images, _ = unbatch(dataset)
    order = np.rint(first_images[:, 0, 0, 0] * n).astype(int)
    assert sorted(order) == list(range(n))
    assert order.tolist() != list(range(n))
    assert not np.array_equal(first_images, second_images)  # reshuffled each epoch
    np.testing.assert_array_equal(first_labels[:, 0], labels[order])  # pairs stay together


def test_augmentation_applies_only_when_training():
    def add_one(images, training=False):
        return images + 1.0

    images = numbered_images(6).astype(np.float32)
    evaluation = make_dataset(images, [0] * 6, batch_size=3, augmentation=add_one)
    training = make_dataset(images, [0] * 6, batch_size=3, training=True, augmentation=add_one)
    assert unbatch(evaluation)[0].max() < 1.0
    assert unbatch(training)[0].min() >= 1.0


def test_make_dataset_validates_its_arguments():
    images = numbered_images(4).astype(np.float32)
    with pytest.raises(ValueError, match="batch_size must be at least 1, got 0"):
        make_dataset(images, [0, 1, 0, 1], batch_size=0)
    with pytest.raises(ValueError, match="4 images but 3 labels"):
        make_dataset(images, [0, 1, 0])


def test_augmented_training_pipeline_is_reproducible_for_a_seed():
    import keras

    from pneumonet_core.data.augment import AugmentationConfig, build_augmentation

    images = np.random.default_rng(0).random((96, 24, 24, 1)).astype(np.float32)
    labels = np.arange(96) % 2

    def one_epoch() -> np.ndarray:
        keras.utils.set_random_seed(7)
        augmentation = build_augmentation(AugmentationConfig(), seed=7)
        dataset = make_dataset(
            images, labels, batch_size=4, training=True, augmentation=augmentation, seed=7
        )
        return unbatch(dataset)[0]

    first = one_epoch()
    assert not np.allclose(first, images)  # really augmented
    np.testing.assert_array_equal(one_epoch(), first)
