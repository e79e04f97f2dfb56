"""Progress display: "compiling" apart from stepping, an ETA from the stepping rate, the fit's
parameters beside its losses, and spinners for the phases without steps."""

import time

import numpy as np

from magan.runtime.progress import phase, progress_bar


def test_rate_and_eta_count_the_stepping_not_the_first_compile_bound_call(capsys):
    bar = progress_bar(100, "training", True)
    with bar.compiling(steps_after=1):
        assert bar.format_dict["rate"] == 0  # no rate while compiling: tqdm shows "?"
        time.sleep(1.0)
    time.sleep(0.1)
    bar.update(11)  # 10 steps in about 0.1 s after 1 s of compiling
    rate = bar.format_dict["rate"]
    bar.close()
    assert rate > 40, rate  # tqdm's own average would be 11 / 1.1 s = 10 steps/s
    err = capsys.readouterr().err
    assert "training (compiling)" in err and "compiled in 1.0 s" in err


def test_phase_spinner_shows_elapsed_time_only_for_phases_longer_than_its_delay(capsys):
    with phase("closure check", True, delay=0.0):
        time.sleep(1.3)
    err = capsys.readouterr().err
    assert "closure check: 00:01" in err and "done" in err
    with phase("a short one", True):  # default delay: 2 s
        time.sleep(0.1)
    assert capsys.readouterr().err == ""
    with phase("quiet", False, delay=0.0):
        time.sleep(1.1)
    assert capsys.readouterr().err == ""


def test_fit_bar_shows_the_parameters_by_name_in_physical_units():
    from magan.fitting.replicas import _postfix
    from magan.space import ParameterSpace

    space = ParameterSpace({"m": (-1.0, 1.0), "energy": (1.0, 10.0, "GeV")})
    row = {"step": 10, "loss_d": 1.2345, "loss_g": 0.5, "r1": 0.1, "mean_m": 0.123456,
           "mean_energy": 4.56789}
    assert _postfix(space, False)(row) == {"loss_d": "1.23", "loss_g": "0.5", "m": "0.1235",
                                           "energy": "4.568 GeV"}


def test_loop_hands_each_row_to_on_row_as_it_comes(tmp_path):
    import jax.numpy as jnp

    from magan.runtime.loop import run_loop
    from magan.runtime.metrics import Watch

    csv, seen = tmp_path / "toy_metrics.csv", []

    def advance(state, i, n):
        return state + n, {"x": jnp.full((n,), i, jnp.float32)}

    def summarise(host, done, state):
        return {"x": float(np.mean(np.concatenate([h["x"] for h in host])))}

    def look(stage, row):
        seen.append((stage, row["step"], csv.read_text().splitlines()[-1]))

    watch = Watch.of(tmp_path, [look])
    with watch.stream("toy") as on_row:
        out = run_loop(advance, jnp.zeros(()), total=6, summarise=summarise, per_call=2,
                       sync_every=2, progress=False, on_row=on_row)
    assert [r["step"] for r in out.history] == [2, 4, 6]
    assert seen == [("toy", 2, "2,0"), ("toy", 4, "4,2"), ("toy", 6, "6,4")]
    assert csv.read_text() == "step,x\n2,0\n4,2\n6,4\n"


def test_a_resumed_stage_starts_its_csv_with_the_rows_so_far(tmp_path):
    from magan.runtime.metrics import Watch

    with Watch.of(tmp_path).stream("pretrain", [{"step": 50, "a": 1.0}]) as on_row:
        assert (tmp_path / "pretrain_metrics.csv").read_text() == "step,a\n50,1\n"
        on_row({"step": 100, "a": 0.5})
    assert (tmp_path / "pretrain_metrics.csv").read_text() == "step,a\n50,1\n100,0.5\n"
