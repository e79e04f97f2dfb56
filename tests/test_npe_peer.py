"""scripts/npe_peer.py, the sbi NPE peer: its budget, its combination of per-image posteriors and
a tiny end-to-end run. Skipped where sbi (the ``bench`` extra, not in CI) is not installed."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("sbi")
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def peer():
    spec = importlib.util.spec_from_file_location("npe_peer", ROOT / "scripts" / "npe_peer.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["npe_peer"] = module  # so that torch.save can pickle its embedding net
    spec.loader.exec_module(module)
    return module


def test_budget_is_magan_default_pretraining(peer):
    from magan.studies.line import study_preset

    line = study_preset("default").pretrain
    assert peer.magan_simulations("line") == line.steps * line.batch_size * 2 == 9000 * 32 * 2
    assert peer.magan_simulations("poisson_hits") == 4500 * 32 * 2


def test_product_of_gaussians(peer):
    """Per-image Gaussians with known means and covariances: the product's precision is the sum of
    the precisions and its mean the precision-weighted mean."""
    rng = np.random.default_rng(0)
    mus = rng.normal(size=(3, 2))
    covs = np.array([np.diag([1.0, 4.0]), np.diag([2.0, 1.0]), [[1.0, 0.5], [0.5, 1.0]]])
    samples = np.stack([rng.multivariate_normal(m, c, 200_000) for m, c in zip(mus, covs)], 1)
    mean, cov = peer.combine_gaussians(samples)
    prec = np.linalg.inv(covs)
    want_cov = np.linalg.inv(prec.sum(0))
    want_mean = want_cov @ np.einsum("npq,nq->p", prec, mus)
    np.testing.assert_allclose(cov, want_cov, rtol=0.02, atol=0.005)
    np.testing.assert_allclose(mean, want_mean, atol=0.01)


@pytest.mark.slow
def test_tiny_run_trains_caches_and_reports(peer, tmp_path, capsys):
    args = SimpleNamespace(simulations=300, max_epochs=1, stop_after_epochs=20, batch_size=64,
                           samples=20, n_targets=8, seed=0, out=str(tmp_path),
                           magan_runs=str(tmp_path / "none"), magan_label="results")
    done = peer.run_simulator("line", args)
    assert (tmp_path / "line" / "posterior.pt").is_file()
    assert len(done["rows"]) == len(done["prob"]["truths"])
    again = peer.run_simulator("line", args)  # reuses the posterior and the rows
    assert again["rows"] == done["rows"]
    peer.print_table("line", done, args)
    out = capsys.readouterr().out
    assert "| NPE |" in out and "| magan |" in out
    args.simulations = 400
    with pytest.raises(SystemExit, match="trained with"):
        peer.run_simulator("line", args)
