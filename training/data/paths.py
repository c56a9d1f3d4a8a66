"""Where the data files live, resolved once so the loaders can take plain paths.

Every input of the Fashion-MNIST benchmark comes from a Debian package, so the whole benchmark
builds offline and byte-for-byte the same on every Debian machine:

| package                 | files used                                              |
|-------------------------|---------------------------------------------------------|
| `dataset-fashion-mnist` | `usr/share/datasets/fashion-mnist/*-ubyte.gz`           |
| `opencv-doc`            | `usr/share/doc/opencv-doc/examples/data/` (digits, photos) |
| `fonts-dejavu-core`, `fonts-liberation`, `fonts-freefont-ttf` | `usr/share/fonts/truetype/...` |

`scripts/fetch_data.sh` (`make data`) unpacks these packages with `apt-get download` + `dpkg -x`
under a data root (env `OOD_DATA_ROOT`, default `.data/` in the repository). Each path is looked
up first under `<data_root>/usr/share/...`, then under the system's `/usr/share/...`, so a machine
that has the packages installed needs no download at all.

Not on Debian? Put the same files anywhere and pass the paths explicitly (see `docs/data.md`):
Fashion-MNIST idx files from https://github.com/zalandoresearch/fashion-mnist (`data/fashion`),
`digits.png` and the photographs from https://github.com/opencv/opencv (`samples/data/`), and any
TrueType fonts with Latin capitals.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

#: Default data root: `.data/` at the repository root (git-ignored), unless `OOD_DATA_ROOT` is set.
REPO_ROOT = Path(__file__).resolve().parents[2]
DATA_ROOT_ENV = "OOD_DATA_ROOT"

FASHION_MNIST_REL = Path("usr/share/datasets/fashion-mnist")
OPENCV_DATA_REL = Path("usr/share/doc/opencv-doc/examples/data")
# Only these font families: other fonts on a machine may lack Latin capitals (icon or math fonts).
FONT_RELS = tuple(
    Path("usr/share/fonts/truetype") / family for family in ("dejavu", "liberation", "freefont")
)
MIN_FONTS = 3
# The fonts of those three packages in Debian 12. Other fonts in the same directories (say from
# fonts-dejavu-extra) are ignored, so the letters set is the same on every machine with the
# packages, whatever else is installed.
BENCHMARK_FONTS: tuple[str, ...] = (
    *(f"DejaVu{s}.ttf" for s in ("Sans", "Sans-Bold", "SansMono", "SansMono-Bold", "Serif")),
    "DejaVuSerif-Bold.ttf",
    *(
        f"Free{family}{style}.ttf"
        for family, styles in (
            ("Mono", ("", "Bold", "BoldOblique", "Oblique")),
            ("Sans", ("", "Bold", "BoldOblique", "Oblique")),
            ("Serif", ("", "Bold", "BoldItalic", "Italic")),
        )
        for style in styles
    ),
    *(
        f"Liberation{family}-{style}.ttf"
        for family in ("Mono", "Sans", "SansNarrow", "Serif")
        for style in ("Regular", "Bold", "BoldItalic", "Italic")
    ),
)


def default_data_root() -> Path:
    """`$OOD_DATA_ROOT` if set, else `<repo>/.data` (where `scripts/fetch_data.sh` unpacks)."""
    env = os.environ.get(DATA_ROOT_ENV)
    return Path(env) if env else REPO_ROOT / ".data"


def _first_existing(candidates: list[Path]) -> Path:
    """The first candidate that exists, else the first (so errors name the data root)."""
    for candidate in candidates:
        if candidate.exists():
            return candidate
    return candidates[0]


def _under_roots(rel: Path, data_root: Path) -> list[Path]:
    return [data_root / rel, Path("/") / rel]


@dataclass(frozen=True)
class DataPaths:
    """Explicit locations of every input; build with `DataPaths.resolve()` or by hand.

    `fashion_mnist_dir` holds the four idx(.gz) files, `opencv_data_dir` holds `digits.png` and
    the photographs, `font_dirs` are searched (recursively) for `.ttf`/`.otf` files. Only fonts
    named in `font_names` are used; set it to `None` to use every font found (your own fonts).
    """

    fashion_mnist_dir: Path
    opencv_data_dir: Path
    font_dirs: tuple[Path, ...]
    font_names: tuple[str, ...] | None = BENCHMARK_FONTS

    @classmethod
    def resolve(cls, data_root: Path | str | None = None) -> DataPaths:
        """Each input from `<data_root>/usr/share/...` if there, else from `/usr/share/...`."""
        root = Path(data_root) if data_root is not None else default_data_root()
        font_dirs = [d for rel in FONT_RELS for d in _under_roots(rel, root) if d.is_dir()]
        return cls(
            fashion_mnist_dir=_first_existing(_under_roots(FASHION_MNIST_REL, root)),
            opencv_data_dir=_first_existing(_under_roots(OPENCV_DATA_REL, root)),
            font_dirs=tuple(font_dirs),
        )

    @property
    def digits_png(self) -> Path:
        return self.opencv_data_dir / "digits.png"

    def fonts(self) -> list[Path]:
        """The font files for the letters set; see `find_fonts`."""
        return find_fonts(self.font_dirs, names=self.font_names)


def find_fonts(
    font_dirs: Sequence[Path],
    min_count: int = MIN_FONTS,
    names: Collection[str] | None = None,
) -> list[Path]:
    """TrueType/OpenType files under `font_dirs` (only those in `names`, if given), sorted by file
    name so the order (and thus the letters OOD set) does not depend on the directories.

    A font present in two dirs (data root and system) is used once. Raises `FileNotFoundError`
    naming the dirs when fewer than `min_count` fonts are found: the letters set needs variety.
    """
    by_name: dict[str, Path] = {}
    for font_dir in font_dirs:
        for path in sorted(Path(font_dir).rglob("*")):
            if path.suffix.lower() in {".ttf", ".otf"} and (names is None or path.name in names):
                by_name.setdefault(path.name, path)
    if len(by_name) < min_count:
        searched = ", ".join(str(d) for d in font_dirs) or "(no font directories)"
        raise FileNotFoundError(
            f"found {len(by_name)} fonts, need at least {min_count}; searched: {searched}. "
            "Run scripts/fetch_data.sh (Debian: fonts-dejavu-core, fonts-liberation, "
            "fonts-freefont-ttf) or pass font_dirs with any TrueType fonts."
        )
    return [by_name[name] for name in sorted(by_name)]
