"""A labelled PNG grid of sample images, so people can see what the data sets look like."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

SCALE = 3
LABEL_WIDTH = 150
GAP = 2


def sample_grid(rows: dict[str, np.ndarray], scale: int = SCALE) -> Image.Image:
    """One row per entry of `rows` (uint8 [k, H, W] images), the name written on the left.

    Pixels are enlarged with nearest-neighbour so the 28x28 images stay crisp; a dark-grey
    background separates the tiles (black is the images' own background).
    """
    tile_h = max(images.shape[1] for images in rows.values()) * scale
    tile_w = max(images.shape[2] for images in rows.values()) * scale
    per_row = max(len(images) for images in rows.values())
    width = LABEL_WIDTH + per_row * (tile_w + GAP)
    height = len(rows) * (tile_h + GAP)
    canvas = Image.new("L", (width, height), 64)
    draw = ImageDraw.Draw(canvas)
    for r, (name, images) in enumerate(rows.items()):
        top = r * (tile_h + GAP)
        draw.text((4, top + tile_h // 2 - 6), name, fill=255)
        for c, image in enumerate(images):
            tile = Image.fromarray(image).resize(
                (image.shape[1] * scale, image.shape[0] * scale), Image.Resampling.NEAREST
            )
            canvas.paste(tile, (LABEL_WIDTH + c * (tile_w + GAP), top))
    return canvas
