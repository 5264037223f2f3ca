"""How often the out-of-distribution guard flags non-chest images, and real X-rays, by reason.

Usage:
    python bench/ood_rates.py --model assets/model/pneumonet.keras [--data DIR] [--json OUT]

Non-chest images are ones that installed packages ship, so the measurement needs no download:
pydicom's test files with pixel data (CT, MR, NM, US, secondary captures), both as DICOM (tags
included) and as their pixels alone re-encoded as PNG; scikit-learn's sample photos (china.jpg,
flower.jpg) in colour and in grayscale, with crops and rotations; matplotlib's sample images
when matplotlib is installed. False flags are counted on the model's patient-grouped
validation split (where the threshold was chosen), on the dataset's `val/` and `test/`
folders, and on `train/` images the model never saw when it was trained on a subset.
Every set is reported with its flag rate in all and, separately, the rate of each reason:
"not a chest X-ray" (the simple checks: colour, tiny, near-constant or extreme-aspect images,
DICOM files of another modality or body part; or features 1.6 times the distance threshold or
more when the picture also has no chest layout, `inference.chest_likeness`) and "outside
validated use" (a DICOM lateral view, or features far from the training X-rays). Either reason
marks the probability as unreliable. Targets: >= 90% of non-chest images flagged (either
reason), <= 2% of X-rays flagged.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import sys
from collections import defaultdict
from pathlib import Path

import benchlib
import numpy as np
from PIL import Image

# One file per distinct picture (pydicom ships several encodings of the same image).
PYDICOM_FILES = (
    "CT_small.dcm",
    "MR_small.dcm",
    "JPEG2000.dcm",
    "693_J2KI.dcm",
    "J2K_pixelrep_mismatch.dcm",
    "examples_overlay.dcm",
    "liver_1frame.dcm",
    "image_dfl.dcm",
    "examples_palette.dcm",
    "examples_ybr_color.dcm",
    "examples_jpeg2k.dcm",
    "SC_rgb_jpeg_dcmd.dcm",
    "SC_jpeg_no_color_transform.dcm",
    "GDCMJ2K_TextGBR.dcm",
    "ExplVR_BigEnd.dcm",
    "JPEGLSNearLossless_16.dcm",
    "rtdose_1frame.dcm",
)
TARGET_FLAGGED = 0.90
TARGET_FALSE_FLAGS = 0.02


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def gray_png_from_unit(pixels: np.ndarray) -> bytes:
    return png_bytes(Image.fromarray((np.clip(pixels, 0, 1) * 255).astype(np.uint8)))


def pydicom_images() -> list[tuple[str, str, bytes]]:
    """(category, name, bytes): each pydicom test image as DICOM and as pixels-only PNG."""
    from pydicom import data as pydicom_data

    from pneumonet_core.imaging import ImageReadError, read_image

    folder = Path(pydicom_data.__file__).parent / "test_files"
    items = []
    for name in PYDICOM_FILES:
        path = folder / name
        if not path.is_file():
            continue
        content = path.read_bytes()
        items.append(("dicom (tags + pixels)", name, content))
        with contextlib.suppress(ImageReadError):
            pixels_only = gray_png_from_unit(read_image(content))
            items.append(("dicom pixels as PNG", f"{name}.png", pixels_only))
    return items


def variants(name: str, image: Image.Image, category: str) -> list[tuple[str, str, bytes]]:
    """The photo in colour and grayscale, four corner crops and two rotations (grayscale)."""
    gray = image.convert("L")
    width, height = gray.size
    items = [
        (f"{category} colour", name, jpeg_bytes(image)),
        (f"{category} grayscale", f"{name}-gray", jpeg_bytes(gray)),
    ]
    crops = {
        "top-left": (0, 0, width * 2 // 3, height * 2 // 3),
        "bottom-right": (width // 3, height // 3, width, height),
        "centre-square": (
            (width - min(width, height)) // 2,
            (height - min(width, height)) // 2,
            (width + min(width, height)) // 2,
            (height + min(width, height)) // 2,
        ),
    }
    for label, box in crops.items():
        items.append(
            (f"{category} grayscale crop", f"{name}-gray-{label}", jpeg_bytes(gray.crop(box)))
        )
        items.append((f"{category} colour crop", f"{name}-{label}", jpeg_bytes(image.crop(box))))
    for angle in (90, 180):
        rotated = gray.rotate(angle, expand=True)
        items.append(
            (f"{category} grayscale rotated", f"{name}-gray-rot{angle}", jpeg_bytes(rotated))
        )
    return items


def sklearn_images() -> list[tuple[str, str, bytes]]:
    from sklearn.datasets import load_sample_images

    samples = load_sample_images()
    items = []
    for path, pixels in zip(samples.filenames, samples.images, strict=True):
        items += variants(Path(path).name, Image.fromarray(pixels), "photo")
    return items


def matplotlib_images() -> list[tuple[str, str, bytes]]:
    """grace_hopper.jpg (photo), s1045.ima (MR slice), the Jacksboro elevation map."""
    try:
        import matplotlib
    except ImportError:
        return []
    folder = Path(matplotlib.get_data_path()) / "sample_data"
    items = []
    if (folder / "grace_hopper.jpg").is_file():
        with Image.open(folder / "grace_hopper.jpg") as image:
            items += variants("grace_hopper.jpg", image.convert("RGB"), "photo")
    if (folder / "s1045.ima.gz").is_file():
        raw = np.frombuffer(gzip.decompress((folder / "s1045.ima.gz").read_bytes()), np.uint16)
        slice_ = raw.reshape(256, 256).astype(np.float32)
        items.append(("mr slice (png)", "s1045.ima", gray_png_from_unit(slice_ / slice_.max())))
    if (folder / "jacksboro_fault_dem.npz").is_file():
        with np.load(folder / "jacksboro_fault_dem.npz") as archive:
            elevation = archive["elevation"].astype(np.float32)
        scaled = (elevation - elevation.min()) / np.ptp(elevation)
        items.append(("elevation map (png)", "jacksboro_fault_dem", gray_png_from_unit(scaled)))
    return items


def xray_sets(model_path: Path, data_dir: Path | None, limit: int) -> dict[str, list[str]]:
    """Real X-ray file lists: the model's validation split, val/, test/, unseen train/."""
    from pneumonet_core.data import scan_dataset
    from pneumonet_core.inference import ood
    from pneumonet_core.models import read_metadata

    metadata = read_metadata(model_path)
    sets = {}
    train_part, validation_part = ood.model_training_split(metadata, data_dir)
    sets["validation split (threshold chosen here)"] = list(validation_part["path"])[:limit]
    root = data_dir or (metadata.training or {}).get("data_dir")
    scan = scan_dataset(root) if root else None
    if scan is not None:
        for split in ("val", "test"):
            frame = scan.split(split)
            if not frame.empty:
                sets[f"dataset {split}/ folder"] = list(frame["path"])[:limit]
        used = set(train_part["path"]) | set(validation_part["path"])
        unseen = scan.split("train")
        unseen = unseen[~unseen["path"].isin(used)]
        if not unseen.empty:
            sample = unseen.sample(n=min(limit, len(unseen)), random_state=1)
            sets["train/ images not used by the model"] = list(sample["path"])
    return sets


def flag_rates(reasons: list[str | None]) -> dict:
    """Counts and rates of flagged inputs, in all and per reason (`ood.flag_counts`)."""
    from pneumonet_core.inference import ood

    counts = ood.flag_counts(reasons)
    total = max(1, counts["n"])
    summary = {"n": counts["n"], "flagged": counts["flagged"], "rate": counts["flagged"] / total}
    for kind in ood.OOD_KINDS:
        summary[kind] = {"flagged": counts[kind], "rate": counts[kind] / total}
    return summary


def rates_line(label: str, rates: dict) -> str:
    """One report line: a set's overall flag rate, then each reason's."""
    from pneumonet_core.inference import ood

    by_kind = ", ".join(
        f'"{kind}" {rates[kind]["flagged"]} = {rates[kind]["rate"]:.1%}' for kind in ood.OOD_KINDS
    )
    return f"  {label:<42} {rates['flagged']:>4}/{rates['n']} = {rates['rate']:.1%} ({by_kind})"


def measure(model_path: Path, data_dir: Path | None, limit: int) -> dict:
    from pneumonet_core.inference import Predictor

    predictor = Predictor(model_path)
    corpus = pydicom_images() + sklearn_images() + matplotlib_images()
    predictions = predictor.predict([c for _, _, c in corpus], names=[n for _, n, _ in corpus])
    reasons_by_category = defaultdict(list)
    missed, errors = [], []
    for (category, name, _), prediction in zip(corpus, predictions, strict=True):
        if prediction.error:
            errors.append(f"{name}: {prediction.error}")
            continue
        reasons_by_category[category].append(prediction.ood_reason)
        if not prediction.ood:
            missed.append(name)
    all_reasons = [reason for reasons in reasons_by_category.values() for reason in reasons]
    xrays = {}
    for label, paths in xray_sets(model_path, data_dir, limit).items():
        results = [p for p in predictor.predict(paths) if p.error is None]
        xrays[label] = flag_rates([p.ood_reason for p in results])
        xrays[label]["examples"] = [p.ood_reason for p in results if p.ood][:3]
    return {
        "model": str(model_path),
        "has_feature_statistics": predictor.ood_statistics is not None,
        "non_chest": {
            **flag_rates(all_reasons),
            "by_category": {
                category: flag_rates(reasons) for category, reasons in reasons_by_category.items()
            },
            "missed": missed,
            "unreadable": errors,
        },
        "xrays": xrays,
    }


def report(results: dict) -> str:
    non_chest = results["non_chest"]
    lines = [
        f"model: {results['model']} (feature statistics: {results['has_feature_statistics']})",
        f"non-chest images flagged, either reason (target >= {TARGET_FLAGGED:.0%}):",
        rates_line("all", non_chest),
    ]
    for category, rates in sorted(non_chest["by_category"].items()):
        lines.append(rates_line(category, rates))
    if non_chest["missed"]:
        lines.append(f"  not flagged: {', '.join(non_chest['missed'])}")
    lines.append(f"X-rays flagged, either reason (target <= {TARGET_FALSE_FLAGS:.0%}):")
    for label, rates in results["xrays"].items():
        lines.append(rates_line(label, rates))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = benchlib.argument_parser(__doc__)
    parser.add_argument("--model", required=True, help="a PneumoNet .keras file")
    parser.add_argument("--data", help="dataset root (default: the model's training data)")
    parser.add_argument("--limit", type=int, default=1000, help="X-rays per set (max)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    results = measure(Path(args.model), Path(args.data) if args.data else None, args.limit)
    print(report(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
