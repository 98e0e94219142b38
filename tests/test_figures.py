"""The one figure writer: nothing drawn past the canvas is cut off, and every PNG of the package goes through it."""

from pathlib import Path

from matplotlib.figure import Figure
from PIL import Image

from cifarlab.figures import outside_canvas, save_figure

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "cifarlab"


def _figure(title_y: float) -> Figure:
    fig = Figure(figsize=(4, 3), layout="constrained")
    fig.subplots().plot([0, 1], [0, 1])
    fig.suptitle("a title that must be readable", y=title_y)
    return fig


def test_a_title_drawn_above_the_canvas_is_kept_by_widening_the_saved_area(tmp_path):
    fig = _figure(title_y=1.15)
    assert outside_canvas(fig)
    with Image.open(save_figure(fig, tmp_path / "cut.png", dpi=100)) as image:
        assert image.height > 300  # the 3-inch canvas at 100 dpi, plus the title above it


def test_a_figure_that_fits_keeps_its_exact_size(tmp_path):
    fig = _figure(title_y=0.98)
    assert not outside_canvas(fig)
    with Image.open(save_figure(fig, tmp_path / "fits.png", dpi=100)) as image:
        assert image.size == (400, 300)


def test_every_png_of_the_package_is_written_by_save_figure():
    writers = [str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")
               if ".savefig(" in path.read_text(encoding="utf-8") and path.name != "figures.py"]
    assert not writers, f"these write figures without the canvas check; call cifarlab.figures.save_figure: {writers}"
