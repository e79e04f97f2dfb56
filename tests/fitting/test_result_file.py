"""FitResult.save / magan.load_fit: a saved fit comes back equal, field by field; bad files are
refused with errors that name the path and the fix. FitResult objects are built directly (no
fit runs here)."""

import dataclasses
import zipfile

import numpy as np
import pytest

import magan
from magan.fitting.diagnostics import Diagnostic
from magan.fitting.result import _ARRAYS, FitResult, load_fit


def _result(*, around: bool = True) -> FitResult:
    rng = np.random.default_rng(0)
    samples = rng.normal(size=(12, 3))
    return FitResult(
        names=("m", "c", "e"), samples=samples, mean=samples.mean(0), std=samples.std(0),
        replica_means=rng.normal(size=(2, 3)), start=np.array([0.1, 2.0, 3.0]),
        raw_mean=samples.mean(0) + 0.1, bias=np.full(3, 0.1, np.float32),
        reference_at=rng.normal(size=(4, 3)) if around else np.array([0.1, 2.0, 3.0]),
        reference_means=rng.normal(size=(4, 3)) if around else np.array([0.2, 2.1, 2.9]),
        history=[{"step": 0, "loss_d": 1.25, "loss_g": np.float32(0.5)},
                 {"step": 50, "loss_d": float("inf"), "loss_g": -2.0}],
        reference_history=[{"step": 0, "loss_d": 0.75}],
        timing={"total_s": 12.5, "compile_s": 3},
        config={"steps": 60, "bias_reference": "around", "shape": (2, 3), "lr": 3e-3,
                "flag": True, "none": None},
        diagnostics=[Diagnostic("too_few_targets", "warn", "Only 12 target image(s).",
                                {"n_targets": 12, "minimum": 50}),
                     Diagnostic("replicas_agree", "ok", "The 2 replicas agree.",
                                {"replica_means": [[0.1, 2.0, 3.0]], "arr": np.arange(3),
                                 "x": np.float64(0.25), "modes": {1: "a"}})],
        stat_std=samples.std(0) / 2, syst_std=np.ones(3) if around else None,
        covariance=np.eye(3) if around else None, units=("", "px", "MeV"),
        emulator={"simulator": "line", "seed": 0, "parameters": ["m", "c", "e"],
                  "image_shape": [28, 28, 1], "weights_sha256": "ab" * 32})


def _assert_equal(a: FitResult, b: FitResult) -> None:
    for f in dataclasses.fields(FitResult):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if f.name in _ARRAYS:
            assert (x is None) == (y is None), f.name
            if x is not None:
                np.testing.assert_array_equal(x, y)
                assert x.dtype == y.dtype and x.shape == y.shape, f.name
        elif f.name == "diagnostics":
            assert all(isinstance(d, Diagnostic) for d in y)
            assert [(d.name, d.status, d.message) for d in x] == \
                   [(d.name, d.status, d.message) for d in y]
            for dx, dy in zip(x, y):
                assert dx.numbers.keys() == dy.numbers.keys()
                for k in dx.numbers:
                    np.testing.assert_array_equal(dx.numbers[k], dy.numbers[k])
                    assert type(dx.numbers[k]) is type(dy.numbers[k]), k
        else:
            assert x == y, f.name
            assert type(x) is type(y), f.name


@pytest.mark.parametrize("around", [True, False])
def test_saved_fit_round_trips_exactly(tmp_path, around):
    res = _result(around=around)
    path = res.save(tmp_path / "fit.npz")
    back = magan.load_fit(path)
    _assert_equal(res, back)
    assert back.names == ("m", "c", "e") and back.warnings == ["too_few_targets"]
    assert back.config["shape"] == (2, 3) and type(back.history[0]["loss_g"]) is np.float32
    assert repr(back) == repr(res)
    # saving again over a saved fit replaces it; the folder of a `magan fit --out` loads too
    res.save(path)
    _assert_equal(res, load_fit(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit.npz"]  # no temporary left


def test_save_refuses_what_is_not_a_saved_fit(tmp_path):
    res = _result()
    other = tmp_path / "notes.npz"
    other.write_text("my notes")
    with pytest.raises(ValueError, match="notes.npz already exists and is a file that is not a "
                                         "fit saved by magan.*overwrite=True"):
        res.save(other)
    assert other.read_text() == "my notes"
    res.save(other, overwrite=True)
    _assert_equal(res, load_fit(other))
    with pytest.raises(ValueError, match="is a folder; name a file to write"):
        res.save(tmp_path)


def test_load_fit_errors_name_the_path_and_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.npz not found: name the .npz file"):
        load_fit(tmp_path / "nothing.npz")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty is a folder, not a saved fit"):
        load_fit(tmp_path / "empty")
    np.save(tmp_path / "a.npy", np.zeros(3))
    with pytest.raises(ValueError, match="a.npy is a single array"):
        load_fit(tmp_path / "a.npy")
    np.savez(tmp_path / "b.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match="b.npz cannot be read as a saved fit \\(no 'meta' entry"):
        load_fit(tmp_path / "b.npz")
    good = _result().save(tmp_path / "fit.npz")
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ValueError, match="damaged.npz cannot be read as a saved fit.*Save the fit "
                                         "again"):
        load_fit(damaged)
    edited = tmp_path / "edited.npz"
    with zipfile.ZipFile(good) as z, zipfile.ZipFile(edited, "w") as out:
        for item in z.namelist():
            data = z.read(item)
            if item == "meta.npy":
                data = data.replace(b'"samples"', b'"sampels"')
            out.writestr(item, data)
    with pytest.raises(ValueError, match="edited.npz"):
        load_fit(edited)


def test_save_names_a_field_it_cannot_keep(tmp_path):
    res = _result()
    res.timing["clock"] = object()
    with pytest.raises(TypeError, match=r"timing\['clock'\] holds a object"):
        res.save(tmp_path / "fit.npz")
    assert not list(tmp_path.iterdir())


def test_load_fit_is_exported():
    assert magan.load_fit is load_fit and "load_fit" in magan.__all__
    assert magan.fitting.load_fit is load_fit


def test_repr_is_one_labelled_line_per_parameter():
    res = _result()
    lines = repr(res).splitlines()
    assert lines[0] == "FitResult of 3 parameter(s) (12 samples, bias-corrected):"
    assert lines[1] == f"  m = {res.mean[0]:.4g} ± {res.std[0]:.2g}"  # no unit, no brackets
    assert lines[2] == f"  c = {res.mean[1]:.4g} ± {res.std[1]:.2g} (px)"
    assert lines[3].endswith("(MeV)")
    assert lines[4] == "  warnings: too_few_targets (see .diagnostics)"
    quiet = dataclasses.replace(res, diagnostics=res.diagnostics[1:], units=(), bias=None)
    assert repr(quiet).splitlines()[-1] == "  warnings: none (1 checks passed)"
    assert "bias-corrected" not in repr(quiet) and "(px)" not in repr(quiet)


@pytest.fixture(scope="module")
def untrained_emulator():
    """A tiny line emulator with freshly initialised weights (no training: only its identity
    and its sample shapes are used)."""
    from magan.nn.build import build_emulator_nets
    from magan.pretraining.state import network_sizes
    from magan.studies.line.simulator import LINE_SPACE

    net = network_sizes(magan.PRETRAIN_PRESETS["tiny"])
    ge, pe, gs, ps = build_emulator_nets(LINE_SPACE.dim, (28, 28, 1), net, 0)
    return magan.Emulator(LINE_SPACE, (28, 28, 1), net, pe, ps, graphdefs=(ge, gs),
                          info={"simulator": "line", "seed": 7})


def test_a_fit_records_the_emulators_identity(untrained_emulator, tmp_path):
    from magan.fitting.stage import _Fit, _result

    emu = untrained_emulator
    ident = emu.identity()
    assert ident["simulator"] == "line" and ident["seed"] == 7
    assert len(ident["weights_sha256"]) == 64
    assert magan.load_emulator(emu.save(tmp_path / "emu")).identity() == ident
    run = _Fit(emulator=emu, cfg=magan.FIT_PRESETS["tiny"], cond=None, features=None,
               simulator=None, seed=0, progress=False)
    raw = np.random.default_rng(0).uniform(size=(2, 5, 4))
    res = _result(run, raw, None, None, np.full(4, 0.5), ([], []))
    assert res.emulator == ident and res.units == tuple(p.unit for p in emu.space.parameters)
    _assert_equal(res, load_fit(res.save(tmp_path / "fit.npz")))
