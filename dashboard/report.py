"""A standalone HTML evaluation report: every plot, table and image in one file.

Plotly's JavaScript is embedded once (with the first figure); the file opens offline.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import plotly.graph_objects as go

_STYLE = """
body { font-family: "Source Sans Pro", Arial, sans-serif; font-size: 18px; color: #1b2a33;
       max-width: 1200px; margin: 2rem auto; padding: 0 1rem; background: #fbfcfd; }
h1 { font-size: 2.2rem; } h2 { font-size: 1.6rem; margin-top: 2.2rem; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 17px; }
th, td { border: 1px solid #c9d6dd; padding: 0.35rem 0.7rem; text-align: right; }
th { background: #eaf1f4; } td:first-child, th:first-child { text-align: left; }
.note { background: #fff7e0; border-left: 5px solid #d9a400; padding: 0.7rem 1rem; }
.gallery { display: flex; flex-wrap: wrap; gap: 1rem; }
.gallery figure { margin: 0; width: 260px; } .gallery img { width: 260px; }
figcaption { font-size: 15px; }
"""


@dataclass
class ReportImage:
    """An image for the report's gallery.

    Attributes:
        caption: Text under the image.
        pixels: uint8 RGB (H, W, 3) or float grayscale (H, W) in [0, 1].
    """

    caption: str
    pixels: np.ndarray


@dataclass
class ReportSection:
    """One heading with its figures, tables, images and text.

    Attributes:
        heading: The section title.
        text: Paragraphs shown first.
        figures: Plotly figures.
        tables: (caption, table) pairs.
        images: Gallery images.
    """

    heading: str
    text: list[str] = field(default_factory=list)
    figures: list[go.Figure] = field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    images: list[ReportImage] = field(default_factory=list)


def _png_data_uri(pixels: np.ndarray) -> str:
    from PIL import Image

    array = np.asarray(pixels)
    if array.dtype != np.uint8:
        array = (np.clip(array, 0, 1) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure_html(figure: go.Figure, include_plotlyjs: bool) -> str:
    return figure.to_html(
        full_html=False,
        include_plotlyjs=include_plotlyjs,
        config={"displaylogo": False, "responsive": True},
    )


def _section_html(section: ReportSection, plotly_embedded: bool) -> tuple[str, bool]:
    parts = [f"<h2>{html.escape(section.heading)}</h2>"]
    parts += [f"<p>{html.escape(paragraph)}</p>" for paragraph in section.text]
    for caption, table in section.tables:
        parts.append(f"<p><strong>{html.escape(caption)}</strong></p>")
        parts.append(table.to_html(float_format=lambda value: f"{value:.3f}", border=0))
    for figure in section.figures:
        parts.append(_figure_html(figure, include_plotlyjs=not plotly_embedded))
        plotly_embedded = True
    if section.images:
        parts.append('<div class="gallery">')
        for image in section.images:
            parts.append(
                f'<figure><img src="{_png_data_uri(image.pixels)}" alt="">'
                f"<figcaption>{html.escape(image.caption)}</figcaption></figure>"
            )
        parts.append("</div>")
    return "\n".join(parts), plotly_embedded


def build_report(title: str, note: str, sections: Sequence[ReportSection]) -> str:
    """Assemble the standalone HTML report.

    Args:
        title: The report title.
        note: The intended-use statement, shown prominently at the top.
        sections: The report's sections, in order.

    Returns:
        A complete HTML document (Plotly's JavaScript embedded once).
    """
    created = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    body, plotly_embedded = [], False
    for section in sections:
        section_html, plotly_embedded = _section_html(section, plotly_embedded)
        body.append(section_html)
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p>Created {created}</p>"
        f"<p class='note'>{html.escape(note)}</p>" + "\n".join(body) + "</body></html>"
    )
