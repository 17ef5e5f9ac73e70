"""A check shared by the figure tests: where a legend lies."""

from __future__ import annotations


def legend_under(fig, legend, axes) -> list[str]:
    """The legend's text, after checking that it lies under every panel of ``axes`` (with their
    tick and axis labels): it covers no data."""
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    box = legend.get_window_extent(r)
    for ax in axes:
        assert box.y1 <= ax.get_tightbbox(r, bbox_extra_artists=[]).y0 + 0.5
    return [t.get_text() for t in legend.get_texts()]
