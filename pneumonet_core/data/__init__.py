"""The dataset: discovery, the patient split, pipelines, augmentation and the lung region.

Keras is imported only when a pipeline or an augmentation is built (`augment_layers`).
"""

from pneumonet_core.data import augment, dataset, lungs
from pneumonet_core.data.augment import (
    NO_AUGMENTATION,
    STOP7_AUGMENTATION,
    AugmentationConfig,
    build_augmentation,
)
from pneumonet_core.data.dataset import (
    FRAME_COLUMNS,
    SPLITS,
    DatasetError,
    DatasetScan,
    LoadedImages,
    class_weights,
    data_fingerprint,
    load_images,
    make_dataset,
    missing_dataset_message,
    patient_id,
    scan_dataset,
    split_by_patient,
    stratified_subset,
    training_split,
)
from pneumonet_core.data.lungs import LUNG_BOX, hide_region, lung_region

__all__ = [
    "FRAME_COLUMNS",
    "LUNG_BOX",
    "NO_AUGMENTATION",
    "SPLITS",
    "STOP7_AUGMENTATION",
    "AugmentationConfig",
    "DatasetError",
    "DatasetScan",
    "LoadedImages",
    "augment",
    "build_augmentation",
    "class_weights",
    "data_fingerprint",
    "dataset",
    "hide_region",
    "load_images",
    "lung_region",
    "lungs",
    "make_dataset",
    "missing_dataset_message",
    "patient_id",
    "scan_dataset",
    "split_by_patient",
    "stratified_subset",
    "training_split",
]
