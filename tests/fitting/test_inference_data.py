"""FitResult.to_inference_data: the draws as an ArviZ posterior, one chain per fit replica."""

import sys
import types

import numpy as np
import pytest

from magan import FitResult


def _result(replicas=3, per_replica=5) -> FitResult:
    """A result whose replica r drew (r * 10 + i, -i) for i < per_replica: pooled replica by
    replica, as magan.fit pools them."""
    rows = [[10.0 * r + i, -float(i)] for r in range(replicas) for i in range(per_replica)]
    samples = np.array(rows)
    return FitResult(names=("m", "c"), samples=samples, mean=samples.mean(0), std=samples.std(0),
                     replica_means=samples.reshape(replicas, per_replica, 2).mean(1),
                     start=np.zeros(2), units=("", "px"), bias=np.zeros(2))


def _check_posterior(data, result: FitResult):
    post = data["posterior"]
    assert set(post.data_vars) == {"m", "c"}
    assert dict(post.sizes) == {"chain": 3, "draw": 5}
    np.testing.assert_array_equal(post["m"].values[1], [10.0, 11.0, 12.0, 13.0, 14.0])
    np.testing.assert_array_equal(post["c"].values.ravel(), result.samples[:, 1])
    assert post["c"].attrs["units"] == "px" and post["m"].attrs["units"] == ""
    assert post.attrs["inference_library"] == "magan" and post.attrs["bias_corrected"] == 1


def test_chains_are_the_fit_replicas_in_the_installed_arviz():
    arviz = pytest.importorskip("arviz")
    result = _result()
    data = result.to_inference_data()
    _check_posterior(data, result)
    if int(arviz.__version__.split(".")[0]) < 1:
        assert isinstance(data, arviz.InferenceData)
        summary = arviz.summary(data, kind="stats")
        assert summary.loc["m", "mean"] == pytest.approx(result.mean[0])


def test_arviz_1_datatree(monkeypatch):
    """ArviZ 1.x builds the posterior with arviz_base.from_dict (groups first) into a DataTree."""
    arviz_base = pytest.importorskip("arviz_base")
    fake = types.SimpleNamespace(__version__="1.3.0", from_dict=arviz_base.from_dict)
    monkeypatch.setitem(sys.modules, "arviz", fake)
    result = _result()
    data = result.to_inference_data()
    assert type(data).__name__ == "DataTree"
    _check_posterior(data, result)


def test_missing_arviz_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "arviz", None)  # import arviz -> ImportError
    with pytest.raises(ImportError, match=r'pip install "magan\[arviz\]"'):
        _result().to_inference_data()


def test_draws_that_do_not_split_into_the_replicas_are_refused():
    result = _result()
    result.samples = result.samples[:-1]
    with pytest.raises(ValueError, match="cannot be split into the 3 replicas"):
        result.draws_by_replica()
    assert _result(2, 4).draws_by_replica().shape == (2, 4, 2)
