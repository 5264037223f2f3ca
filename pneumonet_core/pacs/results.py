"""The two objects written back into a scored study, built with highdicom.

- A Secondary Capture: the X-ray with the Grad-CAM heatmap and a text line burned in (the
  warning instead of the heatmap for an image outside validated use or not a chest X-ray).
- A Comprehensive SR with the finding: probability, label, threshold and its origin, the OOD
  flag and reason, and the algorithm (name, model version, model SHA-256), UNVERIFIED.

Their Series and SOP Instance UIDs are derived from the source instance's UID and the model's
SHA-256, so writing the same result twice stores the same instances, never a duplicate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pneumonet_core import __version__
from pneumonet_core.inference import Explanation, overlay_heatmap

ALGORITHM_NAME = "PneumoNet"
MANUFACTURER = "PneumoNet"
SERIES_DESCRIPTION = "PneumoNet AI result (not for diagnostic use)"
BURNED_IN_NOTICE = "AI result: not for diagnostic use"
SC_SERIES_NUMBER = 9901
SR_SERIES_NUMBER = 9902
CODING_SCHEME = "99PNEUMONET"
MIN_WIDTH = 512  # narrower images are enlarged so the text stays readable
LINE_HEIGHT = 14
CHARACTER_WIDTH = 7  # Pillow's default font, in pixels
HEATMAP_OPACITY = 0.4


@dataclass(frozen=True)
class ResultContext:
    """What the objects say about the model and its operating point."""

    model_version: str
    model_sha256: str
    threshold_origin: str  # "shipped model" or "site operating point ..."


def derived_uid(source_sop_uid: str, model_sha256: str, kind: str) -> str:
    """A UID that depends only on the source instance, the model and the object's kind."""
    from pydicom.uid import generate_uid

    return str(generate_uid(entropy_srcs=[source_sop_uid, model_sha256, kind]))


def build_results(source, explanation: Explanation, context: ResultContext) -> list:
    """The Secondary Capture and the Comprehensive SR for one scored instance.

    Args:
        source: The retrieved source instance (a pydicom Dataset with its pixels).
        explanation: `Predictor.explain` on the source's bytes.
        context: The model version, its SHA-256 and the threshold's origin.
    """
    return [
        secondary_capture(source, explanation, context),
        structured_report(source, explanation, context),
    ]


def result_lines(explanation: Explanation, context: ResultContext) -> list[str]:
    """The text burned into the Secondary Capture, one statement a line."""
    prediction = explanation.prediction
    label = prediction.label or "no result"
    lines = [
        f"{ALGORITHM_NAME} ({context.model_version}): {label}",
        f"probability {prediction.probability:.2f}, threshold {prediction.threshold:.2f}",
    ]
    if prediction.ood:
        lines.append(prediction.ood_reason or "outside validated use")
    return [*lines, BURNED_IN_NOTICE]


def secondary_capture(source, explanation: Explanation, context: ResultContext):
    import highdicom as hd

    pixels = burned_in_pixels(explanation, context)
    image = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=source,
        pixel_array=pixels,
        photometric_interpretation="RGB",
        bits_allocated=8,
        coordinate_system="PATIENT",
        series_instance_uid=derived_uid(source.SOPInstanceUID, context.model_sha256, "sc-series"),
        series_number=SC_SERIES_NUMBER,
        sop_instance_uid=derived_uid(source.SOPInstanceUID, context.model_sha256, "sc"),
        instance_number=1,
        manufacturer=MANUFACTURER,
        patient_orientation=_orientation(source),
        contributing_equipment=[_equipment(context)],
    )
    image.SourceImageSequence = [_source_reference(source)]
    image.BurnedInAnnotation = "YES"
    image.ImageType = ["DERIVED", "SECONDARY"]
    image.SeriesDescription = SERIES_DESCRIPTION
    return image


def burned_in_pixels(explanation: Explanation, context: ResultContext) -> np.ndarray:
    """(h + band, w, 3) uint8: the overlay (the plain image when out of distribution), at least
    `MIN_WIDTH` wide, above a band holding `result_lines`, wrapped to the width."""
    import textwrap

    from PIL import Image, ImageDraw

    prediction = explanation.prediction
    if prediction.ood:
        grey = np.clip(explanation.image * 255.0, 0, 255).astype(np.uint8)
        picture = Image.fromarray(np.stack([grey] * 3, axis=-1))
    else:
        picture = Image.fromarray(
            overlay_heatmap(explanation.image, explanation.heatmap, HEATMAP_OPACITY)
        )
    if picture.width < MIN_WIDTH:
        scale = MIN_WIDTH / picture.width
        picture = picture.resize(
            (MIN_WIDTH, round(picture.height * scale)), Image.Resampling.BILINEAR
        )
    characters = max(20, picture.width // CHARACTER_WIDTH)
    lines = [
        part
        for line in result_lines(explanation, context)
        for part in textwrap.wrap(line, characters)
    ]
    band = LINE_HEIGHT * len(lines) + 8
    canvas = Image.new("RGB", (picture.width, picture.height + band), (0, 0, 0))
    canvas.paste(picture, (0, 0))
    draw = ImageDraw.Draw(canvas)
    for index, line in enumerate(lines):
        draw.text((4, picture.height + 4 + LINE_HEIGHT * index), line, fill=(255, 255, 0))
    return np.asarray(canvas, dtype=np.uint8)


def structured_report(source, explanation: Explanation, context: ResultContext):
    import highdicom as hd

    report = hd.sr.ComprehensiveSR(
        evidence=[source],
        content=_report_content(explanation, context),
        series_instance_uid=derived_uid(source.SOPInstanceUID, context.model_sha256, "sr-series"),
        series_number=SR_SERIES_NUMBER,
        sop_instance_uid=derived_uid(source.SOPInstanceUID, context.model_sha256, "sr"),
        instance_number=1,
        manufacturer=MANUFACTURER,
        is_complete=True,
        is_verified=False,
        contributing_equipment=[_equipment(context)],
    )
    report.SeriesDescription = SERIES_DESCRIPTION
    return report


def concept(value: str, meaning: str):
    import highdicom as hd

    return hd.sr.CodedConcept(value=value, scheme_designator=CODING_SCHEME, meaning=meaning)


def _report_content(explanation: Explanation, context: ResultContext):
    import highdicom as hd

    prediction = explanation.prediction
    has = "CONTAINS"
    unit = hd.sr.CodedConcept(value="1", scheme_designator="UCUM", meaning="no units")
    items = [
        hd.sr.NumContentItem(
            concept("probability", "Probability of pneumonia"),
            float(prediction.probability),
            unit,
            relationship_type=has,
        ),
        hd.sr.TextContentItem(
            concept("label", "Label"), prediction.label or "no result", relationship_type=has
        ),
        hd.sr.NumContentItem(
            concept("threshold", "Threshold"),
            float(prediction.threshold),
            unit,
            relationship_type=has,
        ),
        hd.sr.TextContentItem(
            concept("threshold_origin", "Threshold origin"),
            context.threshold_origin,
            relationship_type=has,
        ),
        hd.sr.TextContentItem(
            concept("ood", "Out of distribution"),
            "yes" if prediction.ood else "no",
            relationship_type=has,
        ),
        hd.sr.TextContentItem(
            concept("ood_reason", "Out-of-distribution reason"),
            prediction.ood_reason or "none",
            relationship_type=has,
        ),
        hd.sr.TextContentItem(
            concept("algorithm", "Algorithm name"), ALGORITHM_NAME, relationship_type=has
        ),
        hd.sr.TextContentItem(
            concept("model_version", "Model version"), context.model_version, relationship_type=has
        ),
        hd.sr.TextContentItem(
            concept("model_sha256", "Model SHA-256"), context.model_sha256, relationship_type=has
        ),
        hd.sr.TextContentItem(concept("notice", "Notice"), BURNED_IN_NOTICE, relationship_type=has),
    ]
    root = hd.sr.ContainerContentItem(concept("result", "PneumoNet AI result"))
    root.ContentSequence = items
    return root


def _equipment(context: ResultContext):
    import highdicom as hd
    from pydicom.sr.codedict import codes

    return hd.ContributingEquipment(
        manufacturer=MANUFACTURER,
        purpose_of_reference=codes.DCM.ProcessingEquipment,
        manufacturer_model_name=f"{ALGORITHM_NAME} model {context.model_sha256[:16]}",
        software_versions=[__version__, context.model_version],
    )


def _source_reference(source):
    from pydicom.dataset import Dataset

    reference = Dataset()
    reference.ReferencedSOPClassUID = source.SOPClassUID
    reference.ReferencedSOPInstanceUID = source.SOPInstanceUID
    return reference


def _orientation(source) -> tuple[str, str]:
    orientation = source.get("PatientOrientation")
    if orientation is not None and len(orientation) == 2:
        return str(orientation[0]), str(orientation[1])
    return ("L", "F")  # the usual display of a frontal chest film, when the source says nothing


def read_finding(report) -> dict:
    """The finding written by `structured_report`, read back from an SR dataset."""
    found = {}
    for item in report.ContentSequence:
        key = item.ConceptNameCodeSequence[0].CodeValue
        if item.ValueType == "NUM":
            found[key] = float(item.MeasuredValueSequence[0].NumericValue)
        elif item.ValueType == "TEXT":
            found[key] = str(item.TextValue)
    return found
