"""Trial of a classical lung mask (kept as a negative result; the audit uses the fixed box).

Otsu threshold of the smoothed image computed on its central 80%, a 10% frame cleared, a
binary opening, the two largest dark components kept, closed and hole-filled. A mask passes
its sanity check when the two components lie on either side of the midline, each covers at
least 3% of the image and together 10-55%. Prints the pass rate on a random sample of
`test/` and `train/`; with `--out` it also writes overlays (red: passed, blue: failed) to
look at, outside the project (they show dataset images).

    python bench/lung_mask_trial.py [--sample 120] [--out /tmp/lung-masks]
"""

from __future__ import annotations

from pathlib import Path

import benchlib
import numpy as np
from scipy import ndimage


def otsu_threshold(values: np.ndarray, bins: int = 64) -> float:
    """The grey level that maximises the between-class variance of values in [0, 1]."""
    counts, edges = np.histogram(values, bins=bins, range=(0, 1))
    centres = (edges[:-1] + edges[1:]) / 2
    below = np.cumsum(counts)
    above = below[-1] - below
    mass_below = np.cumsum(counts * centres)
    mean_below = mass_below / np.maximum(below, 1)
    mean_above = (mass_below[-1] - mass_below) / np.maximum(above, 1)
    return float(centres[np.argmax(below * above * (mean_below - mean_above) ** 2)])


def classical_lung_mask(image: np.ndarray) -> tuple[np.ndarray, bool]:
    """(mask (S, S) bool, passed sanity check) for one (S, S) image in [0, 1]."""
    size = image.shape[0]
    margin = int(0.1 * size)
    smooth = ndimage.gaussian_filter(image, 2)
    dark = smooth < otsu_threshold(smooth[margin:-margin, margin:-margin].ravel())
    dark[:margin], dark[-margin:], dark[:, :margin], dark[:, -margin:] = False, False, False, False
    labels, count = ndimage.label(ndimage.binary_opening(dark, iterations=2))
    sizes = ndimage.sum(labels > 0, labels, range(1, count + 1))
    keep = [int(index) + 1 for index in np.argsort(sizes)[::-1][:2]]
    mask = ndimage.binary_fill_holes(ndimage.binary_closing(np.isin(labels, keep), iterations=3))
    if len(keep) < 2:
        return mask, False
    columns = [ndimage.center_of_mass(labels == index)[1] for index in keep]
    areas = [float(np.mean(labels == index)) for index in keep]
    passed = min(columns) < size / 2 < max(columns) and min(areas) > 0.03
    return mask, bool(passed and 0.10 < mask.mean() < 0.55)


def main() -> int:
    from pneumonet_core.data import load_images, scan_dataset

    parser = benchlib.argument_parser(__doc__)
    parser.add_argument("--sample", type=int, default=120)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    for split in ("test", "train"):
        frame = scan_dataset(benchlib.data_root() / split).frame
        frame = frame.sample(min(args.sample, len(frame)), random_state=0)
        images = load_images(frame["path"], 128).images[..., 0]
        results = [classical_lung_mask(image) for image in images]
        rate = np.mean([passed for _, passed in results])
        print(f"{split}: {rate:.1%} of {len(images)} masks pass the sanity check")
        if args.out:
            write_overlays(args.out / f"{split}.png", images[:12], results[:12])
    return 0


def write_overlays(path: Path, images, results) -> None:
    from PIL import Image

    tiles = []
    for image, (mask, passed) in zip(images, results, strict=True):
        rgb = np.repeat(image[..., None], 3, axis=-1)
        colour = np.array([0.5, 0, 0] if passed else [0, 0, 0.5])
        rgb[mask] = rgb[mask] * 0.5 + colour
        tiles.append(rgb)
    rows = [np.concatenate(tiles[start : start + 6], axis=1) for start in range(0, len(tiles), 6)]
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.concatenate(rows) * 255).astype("uint8")).save(path)


if __name__ == "__main__":
    raise SystemExit(main())
