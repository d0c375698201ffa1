"""Pictures: a finished layout is drawn once, to the same bytes."""

import io

import matplotlib.pyplot as plt
import numpy as np

from booking_platform.core.plots import DPI, figure_png


def _laid_out_figure() -> plt.Figure:
    figure, axes = plt.subplots(1, 2, figsize=(6, 3))
    for axis in axes:
        axis.bar(range(12), np.linspace(0, 1, 12))
        axis.set_xticks(range(12), [f"level {i}" for i in range(12)], rotation=45)
    figure.tight_layout()
    return figure


def test_a_tight_layout_figure_is_drawn_once_to_the_bytes_savefig_gives() -> None:
    reference, figure = _laid_out_figure(), _laid_out_figure()
    buffer = io.BytesIO()
    reference.savefig(buffer, format="png", dpi=DPI)
    draws = []
    draw = figure.draw
    figure.draw = lambda renderer: draws.append(renderer) or draw(renderer)
    try:
        assert figure_png(figure) == buffer.getvalue()
        assert len(draws) == 1
    finally:
        plt.close(reference)
        plt.close(figure)
