"""Networks and their files: architectures, the ensemble, and `.keras` files that carry their
metadata. Keras is imported only inside the functions that build or load a model (`layers`,
the custom layers saved inside models, is imported by those functions)."""

from pneumonet_core.models import architectures, ensemble, modelio
from pneumonet_core.models.architectures import (
    ARCHITECTURES,
    GRADCAM_LAYER,
    INPUT_NORMALIZATIONS,
    build_model,
    default_image_size,
)
from pneumonet_core.models.ensemble import build_ensemble, fit_platt, member_logits
from pneumonet_core.models.modelio import (
    ModelLoadError,
    ModelMetadata,
    check_writable_destination,
    load_model,
    promote_model,
    read_metadata,
    read_model_entry,
    save_model,
    write_model_entries,
)

__all__ = [
    "ARCHITECTURES",
    "GRADCAM_LAYER",
    "INPUT_NORMALIZATIONS",
    "ModelLoadError",
    "ModelMetadata",
    "architectures",
    "build_ensemble",
    "build_model",
    "check_writable_destination",
    "default_image_size",
    "ensemble",
    "fit_platt",
    "load_model",
    "member_logits",
    "modelio",
    "promote_model",
    "read_metadata",
    "read_model_entry",
    "save_model",
    "write_model_entries",
]
