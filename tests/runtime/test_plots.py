"""The run figures: the corner plot of a fit's draws, the metric panels of losses.png and the
sample grid's titles."""

import types

import numpy as np
import pytest

from magan.runtime import plots
from magan.space import ParameterSpace

PNG = b"\x89PNG\r\n\x1a\n"


def _png(path) -> bool:
    data = path.read_bytes()
    return data[:8] == PNG and len(data) > 5000


def _captured(monkeypatch) -> list:
    """The figures that the plots module would save, kept open for inspection."""
    figures = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, path: figures.append(fig) or path)
    return figures


def test_corner_plot_writes_a_png_with_names_units_and_truth(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    samples = rng.normal(size=(300, 3)) * [0.1, 2.0, 5.0] + [1.0, 10.0, 3.0]
    path = plots.plot_corner(("m", "c", "x0"), samples, tmp_path / "corner.png",
                             units=("", "px", "mm"), truth=[1.05, 40.0, 3.0])
    assert path == tmp_path / "corner.png" and _png(path)
    figures = _captured(monkeypatch)
    plots.plot_corner(("m", "c", "x0"), samples, tmp_path / "x.png", units=("", "px", "mm"),
                      truth=[1.05, 40.0, 3.0])
    axes = np.array(figures[0].axes).reshape(3, 3)
    assert axes[2, 1].get_xlabel() == "c (px)" and axes[2, 0].get_ylabel() == "x0 (mm)"
    assert axes[0, 0].get_title().startswith("m = ")
    # the truth is drawn, and inside the axis even far from the draws (c = 40 vs 10 +- 2)
    lo, hi = axes[1, 1].get_xlim()
    assert lo < 40.0 < hi
    assert any(np.allclose(line.get_xdata(), 40.0) for line in axes[1, 1].lines)


def test_corner_plot_one_parameter_and_a_column_without_spread(tmp_path):
    rng = np.random.default_rng(1)
    assert _png(plots.plot_corner(["a"], rng.normal(size=(64, 1)), tmp_path / "one.png",
                                  units=["GeV"], truth=[0.3]))
    flat = rng.normal(size=(64, 2))
    flat[:, 1] = 2.0  # a fit whose replicas all collapsed to one value
    assert _png(plots.plot_corner(["a", "b"], flat, tmp_path / "flat.png"))


def test_corner_plot_refuses_bad_inputs_with_the_fix(tmp_path):
    with pytest.raises(ValueError, match=r"\(K, 2\)"):
        plots.plot_corner(["a", "b"], np.zeros((10, 3)), tmp_path / "c.png")
    bad = np.ones((10, 2))
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"\['b'\] contain NaN"):
        plots.plot_corner(["a", "b"], bad, tmp_path / "c.png")
    with pytest.raises(ValueError, match="truth must hold 2 values"):
        plots.plot_corner(["a", "b"], np.random.default_rng(0).normal(size=(10, 2)),
                          tmp_path / "c.png", truth=[1.0])


def test_the_studies_write_the_corner_plot_beside_fit_png(tmp_path):
    from magan.studies.runs import plot_fit_result

    space = ParameterSpace({"m": (-1.0, 1.0, ""), "c": (0.0, 20.0, "px")})
    samples = np.random.default_rng(2).normal(size=(40, 2)) * [0.1, 1.0] + [0.2, 9.0]
    result = types.SimpleNamespace(samples=samples, start=space.center())
    plot_fit_result(space, result, np.array([0.25, 10.0]), tmp_path)
    assert _png(tmp_path / "fit.png") and _png(tmp_path / "corner.png")


def _histories():
    pre = [{"step": s, "loss_emulator": 0.7, "r1": 0.01 * s, "siamese_acc": 0.5 + s / 400}
           for s in range(10, 110, 10)]
    fit = [{"step": s, "loss_d": 1.3, "loss_g": 0.7, "mean_m": 0.1 + s / 1000,
            "mean_c": 5.0 + s / 10} for s in range(0, 60, 10)]
    return {"pre-training": pre, "fit": fit}


def test_losses_png_puts_accuracies_on_their_own_linear_axis_and_plots_the_parameters(
        tmp_path, monkeypatch):
    assert _png(plots.plot_losses(_histories(), tmp_path / "losses.png"))
    figures = _captured(monkeypatch)
    plots.plot_losses(_histories(), tmp_path / "x.png", truth={"m": 0.2})
    axes = np.array(figures[0].axes).reshape(2, 3)
    labels = [[line.get_label() for line in ax.lines] for ax in axes.ravel()]
    loss, acc, off = axes[0]
    assert labels[0] == ["loss_emulator", "r1"] and loss.get_yscale() == "symlog"
    assert "siamese_acc" in labels[1] and acc.get_yscale() == "linear"
    assert acc.get_ylim() == (0.0, 1.0) and not off.axison
    fit_loss, m, c = axes[1]
    assert labels[3] == ["loss_d", "loss_g"]
    assert m.get_yscale() == "linear" and m.get_ylabel() == "fitted m" and "truth" in labels[4]
    np.testing.assert_allclose(c.lines[0].get_ydata(), [5.0, 6.0, 7.0, 8.0, 9.0, 10.0])
    assert "truth" not in labels[5]  # no truth given for c


def test_sample_grid_titles_do_not_overlap(monkeypatch):
    figures = _captured(monkeypatch)
    images = np.random.default_rng(3).random((8, 12, 20, 1))
    # the calorimeter study's titles, one parameter renamed longer: columns widen with them
    titles = [f"{e} GeV\nsampling_fraction=0.0244\nmoliere_scale=1.03\ndepth_scale=1.24\n"
              "electronic_noise_per_cell_mev=0.0174" for e in range(10, 90, 10)]
    plots.plot_image_grid({"simulated": images, "emulated": images}, "unused.png", titles=titles)
    fig = figures[0]
    renderer = fig.canvas.get_renderer()
    fig.draw(renderer)  # lays the figure out as savefig would
    boxes = [ax.title.get_window_extent(renderer) for ax in fig.axes[:8]]
    for left, right in zip(boxes, boxes[1:]):
        assert left.x1 <= right.x0, "neighbouring column titles overlap"
    image_top = max(ax.get_window_extent(renderer).y1 for ax in fig.axes)
    assert all(b.y0 >= image_top - 1 for b in boxes)  # above the images, not over them
