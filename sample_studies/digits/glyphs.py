"""A deterministic, download-free digit data set: a 5x7 bitmap font, randomly warped onto 16x16.

Each image is one glyph under a random affine warp (scale, aspect, rotation,
shear, shift), drawn at a random stroke contrast with Gaussian pixel noise.
The data depend only on `seed`, never on the trial's seed, so every trial of a
study trains and validates on the same examples.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

SIZE = 16  # images are SIZE x SIZE
CLASSES = 10

# 5 wide x 7 high, '#' = ink.
FONT = {
    0: [".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."],
    1: ["..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."],
    2: [".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"],
    3: ["#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."],
    4: ["...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."],
    5: ["#####", "#....", "####.", "....#", "....#", "#...#", ".###."],
    6: ["..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."],
    7: ["#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."],
    8: [".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."],
    9: [".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."],
}


def glyph_bitmaps() -> torch.Tensor:
    """The font as a (10, 1, 7, 5) float tensor of 0/1."""
    rows = [[[1.0 if c == "#" else 0.0 for c in row] for row in FONT[d]] for d in range(CLASSES)]
    return torch.tensor(rows).unsqueeze(1)


def render(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` images (n, SIZE, SIZE) in roughly [-1, 2] and their labels (n,), from `seed` alone."""
    g = torch.Generator().manual_seed(seed)

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, generator=g)

    labels = torch.randint(0, CLASSES, (n,), generator=g)
    # affine_grid maps output coordinates in [-1, 1] to glyph coordinates in [-1, 1]:
    # a glyph 5 px wide should cover ~9-12 px of the 16, 7 px high ~12-15 px.
    scale = uniform(0.8, 1.15)
    sx = (SIZE / 10.5) / (scale * uniform(0.85, 1.15))  # aspect jitter
    sy = (SIZE / 13.5) / scale
    angle = uniform(-0.3, 0.3)  # radians, ~ +-17 degrees
    shear = uniform(-0.3, 0.3)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = sx * cos
    theta[:, 0, 1] = sx * (-sin + shear)
    theta[:, 1, 0] = sy * sin
    theta[:, 1, 1] = sy * cos
    theta[:, 0, 2] = uniform(-0.25, 0.25) * sx  # shift, in glyph units
    theta[:, 1, 2] = uniform(-0.15, 0.15) * sy
    grid = F.affine_grid(theta, [n, 1, SIZE, SIZE], align_corners=False)
    ink = F.grid_sample(glyph_bitmaps()[labels], grid, mode="bilinear",
                        padding_mode="zeros", align_corners=False)[:, 0]
    contrast = uniform(0.5, 1.0).view(n, 1, 1)
    noise = 0.3 * torch.randn(n, SIZE, SIZE, generator=g)
    images = contrast * ink + noise
    return images, labels


def split(train: int = 8000, val: int = 2000, seed: int = 0):
    """(x_train, y_train, x_val, y_val), flattened to (n, SIZE*SIZE) and standardized."""
    images, labels = render(train + val, seed)
    x = images.reshape(len(images), -1)
    mean, std = x[:train].mean(), x[:train].std()
    x = (x - mean) / std
    return x[:train], labels[:train], x[train:], labels[train:]


def ascii_art(image: torch.Tensor) -> str:
    """A quick look at one image in a terminal (for eyeballing the generator)."""
    shades = " .:-=+*#%@"
    lo, hi = float(image.min()), float(image.max())
    scaled = ((image - lo) / max(hi - lo, 1e-6) * (len(shades) - 1)).round().long()
    return "\n".join("".join(shades[int(v)] for v in row) for row in scaled)


if __name__ == "__main__":
    imgs, labs = render(6, seed=0)
    for img, lab in zip(imgs, labs, strict=True):
        print(f"label {int(lab)}\n{ascii_art(img)}\n")
