"""The peer, side by side: sbi's neural posterior estimation (NPE) on magan's problems.

For each chosen simulator (the line study and the benchmarks of :mod:`magan.benchmarks`) this
draws N parameter points from the prior (uniform on the simulator's box), simulates one image at
each, and trains sbi's NPE on them: a masked autoregressive flow (MAF) for p(theta | x) after a
small CNN that embeds each image in 32 numbers. By default N is the number of simulations that
magan's pre-training consumes for that simulator (steps x batch size x two simulations per point:
the line study's default preset, 9000 x 32 x 2 = 576,000; a benchmark, PRETRAIN_PRESETS["default"],
9000 x 32 x 2 = 576,000), so both methods get the same simulator budget.

At the truth points magan's studies use (the line: the rows of studies/line/accuracy.json, with
scripts/line_accuracy.py's target seeds; a benchmark: magan.benchmarks' five truths, with
scripts/generalisation.py's target seeds, so both methods see the very same target images) it
draws samples from each target image's NPE posterior and combines them into one posterior for
the whole target set:

* each image's posterior p(theta | x_i) is approximated by a Gaussian N(mu_i, S_i) (mean and
  covariance of its samples);
* the prior is uniform, so the posterior given all images is proportional to the product of the
  per-image posteriors inside the box; the product of Gaussians is Gaussian with precision
  sum_i S_i^-1 and mean (sum_i S_i^-1)^-1 sum_i S_i^-1 mu_i. The box's edges are ignored: near a
  bound, where each per-image posterior is cut off by the prior, the Gaussian approximation is
  rough (its mean is pulled inward).

It prints, per truth and parameter, NPE's mean +- std, error in % of the range and pull (error /
std) beside magan's: for the line from the committed studies/line/accuracy.json (magan's
pre-training time from studies/line/summary.json), for a benchmark from
runs/generalisation/<name>/<label>.json when scripts/generalisation.py has made it (--magan-runs,
--magan-label; "n/a" otherwise). Times: simulating, training, and inference (sampling and
combining) per truth.

The trained posterior and the results go to OUT/<name>/ (posterior.pt, results.json); a rerun
with the same settings reuses both (an interrupted run resumes at the next truth), a rerun with
other settings is refused.

Needs torch and sbi, which magan does not depend on: pip install -e '.[bench]'.

    python scripts/npe_peer.py                                       # full budget, line + hits
    python scripts/npe_peer.py --simulators line --simulations 20000 --max-epochs 30
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

import magan
from magan.benchmarks import BENCHMARKS
from magan.benchmarks import simulators as benchmark_simulators
from magan.runtime.io import atomic_write_json
from magan.studies.line import study_preset as line_study_preset
from magan.studies.line.simulator import LINE_SPACE, simulate_lines

ROOT = Path(__file__).resolve().parent.parent
LINE_ACCURACY = ROOT / "studies" / "line" / "accuracy.json"
LINE_SUMMARY = ROOT / "studies" / "line" / "summary.json"
SIMULATE_CHUNK = 4096


def magan_simulations(name: str) -> int:
    """Simulator calls (images) of magan's default pre-training for simulator ``name`` (the line
    study's preset for "line", the library's default for a benchmark): every step draws
    ``batch_size`` points and simulates each twice (magan.pretraining.feeding)."""
    cfg = (line_study_preset("default").pretrain if name == "line"
           else magan.PRETRAIN_PRESETS["default"])
    return cfg.steps * cfg.batch_size * 2


def budget(args, name: str) -> int:
    """NPE's training simulations for simulator ``name``: --simulations, else magan's."""
    return args.simulations or magan_simulations(name)


def problem(name: str) -> dict:
    """The simulator, space, truths, target seeds and target count magan's study uses."""
    if name == "line":
        truths = np.array([r["truth"] for r in json.loads(LINE_ACCURACY.read_text())["rows"]])
        return {"simulate": simulate_lines, "space": LINE_SPACE, "truths": truths,
                "n_targets": 500, "target_rng": lambda k: np.random.default_rng(1000 + k)}
    bench = BENCHMARKS[name]
    return {"simulate": getattr(benchmark_simulators, f"simulate_{name}"), "space": bench.space,
            "truths": bench.truths, "n_targets": 1000, "target_rng": bench.target_rng}


class ImageEmbedding(nn.Module):
    """A small CNN: (N, H * W) flattened images -> (N, features). Three 3x3 convolutions (8, 16, 16
    channels, ReLU, the first two each followed by 2x2 max pooling), flattened (so positions are
    kept: a line's height, a blob's centre), then two dense layers."""

    def __init__(self, shape: tuple[int, int], features: int = 32):
        super().__init__()
        self.shape = tuple(shape)
        self.conv = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.Flatten())
        n = self.conv(torch.zeros(1, 1, *shape)).shape[1]
        self.head = nn.Sequential(nn.Linear(n, 64), nn.ReLU(), nn.Linear(64, features))

    def forward(self, x):
        return self.head(self.conv(x.reshape(-1, 1, *self.shape)))


def simulate_training_set(prob: dict, n: int, seed: int, name: str):
    """N points uniform on the box and one image each, in chunks with their own seeds."""
    space, thetas, images = prob["space"], [], []
    for lo in tqdm(range(0, n, SIMULATE_CHUNK), desc=f"{name}: simulating", unit="chunk"):
        rng = np.random.default_rng([seed, zlib.crc32(name.encode()), lo])
        theta = space.from_unit(rng.random((min(SIMULATE_CHUNK, n - lo), space.dim)))
        thetas.append(theta.astype(np.float32))
        images.append(np.asarray(prob["simulate"](rng, theta), np.float32)[..., 0])
    images = np.concatenate(images)
    return torch.from_numpy(np.concatenate(thetas)), torch.from_numpy(images), images.shape[1:]


def train_posterior(prob: dict, args, name: str) -> tuple:
    """Simulate, train NPE (MAF after the CNN embedding), build the posterior; with timings."""
    from sbi.inference import NPE
    from sbi.neural_nets import posterior_nn
    from sbi.utils import BoxUniform

    torch.manual_seed(args.seed)
    space = prob["space"]
    prior = BoxUniform(torch.tensor(space.low, dtype=torch.float32),
                       torch.tensor(space.high, dtype=torch.float32))
    t0 = time.perf_counter()
    theta, x, shape = simulate_training_set(prob, budget(args, name), args.seed, name)
    x = x.reshape(len(x), -1)  # flat: sbi z-scores with one mean and std for all pixels
    simulate_s = time.perf_counter() - t0
    net = posterior_nn(model="maf", embedding_net=ImageEmbedding(shape),
                       z_score_x="structured", hidden_features=64, num_transforms=5)
    inference = NPE(prior=prior, density_estimator=net, show_progress_bars=True,
                    **_log_to(Path(args.out) / name / "sbi-logs"))
    inference.append_simulations(theta, x)
    t0 = time.perf_counter()
    estimator = inference.train(training_batch_size=args.batch_size, max_num_epochs=args.max_epochs,
                                stop_after_epochs=args.stop_after_epochs, show_train_summary=True)
    train_s = time.perf_counter() - t0
    posterior = inference.build_posterior(estimator)
    epochs = len(inference.summary["epochs_trained"]) and inference.summary["epochs_trained"][-1]
    return posterior, {"simulate_s": simulate_s, "train_s": train_s, "epochs": int(epochs),
                       "best_validation_loss": float(inference.summary["best_validation_loss"][-1])}


def _log_to(folder: Path) -> dict:
    """sbi's TensorBoard logs go to ``folder`` (not ./sbi-logs): as a ``tracker`` where sbi takes
    one, else as a ``summary_writer`` (older releases)."""
    import inspect

    from sbi.inference import NPE
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(folder))
    if "tracker" not in inspect.signature(NPE.__init__).parameters:
        return {"summary_writer": writer}
    from sbi.utils.tracking import TensorBoardTracker

    return {"tracker": TensorBoardTracker(writer)}


def load_or_train(prob: dict, args, name: str, settings: dict):
    """OUT/<name>/posterior.pt when made with ``settings``, else train and save it."""
    folder = Path(args.out) / name
    path, stamp = folder / "posterior.pt", folder / "posterior.json"
    if path.exists() and stamp.exists():
        saved = json.loads(stamp.read_text())
        if saved["settings"] != settings:
            raise SystemExit(f"{path} was trained with {saved['settings']}, not {settings}; pass "
                             "another --out (or delete the folder).")
        print(f"{name}: reusing the trained posterior in {path}", flush=True)
        return torch.load(path, weights_only=False), saved["training"]
    posterior, training = train_posterior(prob, args, name)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(posterior, path)
    atomic_write_json(stamp, {"settings": settings, "training": training})
    print(f"{name}: {training['epochs']} epochs, trained in {training['train_s']:.0f} s",
          flush=True)
    return posterior, training


def combine_gaussians(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(S, N, P) samples of N per-image posteriors -> mean (P,) and covariance (P, P) of the
    product of their Gaussian approximations (precision-weighted; the prior is uniform)."""
    mu = samples.mean(axis=0)  # (N, P)
    dev = samples - mu
    cov = np.einsum("snp,snq->npq", dev, dev) / (samples.shape[0] - 1)
    prec = np.linalg.inv(cov)
    total = prec.sum(axis=0)
    cov_all = np.linalg.inv(total)
    return cov_all @ np.einsum("npq,nq->p", prec, mu), cov_all


def infer_truth(posterior, prob: dict, k: int, args) -> dict:
    """Simulate truth k's target set, sample every image's posterior, combine; in % of range."""
    truth = prob["truths"][k]
    n = args.n_targets or prob["n_targets"]
    targets = prob["simulate"](prob["target_rng"](k), np.tile(truth, (n, 1)))
    x = torch.from_numpy(np.asarray(targets, np.float32).reshape(n, -1))
    t0 = time.perf_counter()
    with torch.no_grad():
        samples = posterior.sample_batched((args.samples,), x=x, show_progress_bars=False)
    mean, cov = combine_gaussians(samples.numpy().astype(np.float64))
    infer_s = time.perf_counter() - t0
    width = prob["space"].width
    std = np.sqrt(np.diag(cov))
    err, std_pct = (mean - truth) / width * 100, std / width * 100
    return {"truth": truth.tolist(), "n_targets": n, "mean": mean.tolist(), "std": std.tolist(),
            "error_pct": err.tolist(), "std_pct": std_pct.tolist(),
            "pull": (err / std_pct).tolist(), "infer_s": infer_s}


def magan_rows(name: str, args) -> tuple[list, float | None]:
    """magan's rows (error_pct, pull, fit_s per truth) and pre-training seconds, or Nones."""
    if name == "line":
        saved = json.loads(LINE_ACCURACY.read_text())
        summary = json.loads(LINE_SUMMARY.read_text()) if LINE_SUMMARY.exists() else {}
        width = LINE_SPACE.width
        rows = [{"error_pct": r["error_pct"], "fit_s": r["fit_s"],
                 "pull": (np.array(r["error_pct"]) / (np.array(r["std"]) / width * 100)).tolist()}
                for r in saved["rows"]]
        return rows, summary.get("timings_s", {}).get("pretrain_s")
    path = Path(args.magan_runs) / name / f"{args.magan_label}.json"
    if not path.exists():
        return [None] * len(BENCHMARKS[name].truths), None
    saved = json.loads(path.read_text())["rows"]
    return [saved.get(f"{k}/sim") or saved.get(f"{k}/nosim")
            for k in range(len(BENCHMARKS[name].truths))], None


def run_simulator(name: str, args) -> dict:
    prob = problem(name)
    settings = {"simulations": budget(args, name),
                "max_epochs": args.max_epochs, "stop_after_epochs": args.stop_after_epochs,
                "batch_size": args.batch_size, "seed": args.seed}
    posterior, training = load_or_train(prob, args, name, settings)
    path = Path(args.out) / name / "results.json"
    full = {**settings, "samples": args.samples, "n_targets": args.n_targets}
    results = json.loads(path.read_text()) if path.exists() else {"settings": full, "rows": {}}
    if results["settings"] != full:
        raise SystemExit(f"{path} holds results made with {results['settings']}, not {full}; pass "
                         "another --out (or delete the file).")
    truths = range(len(prob["truths"]))
    for k in tqdm([k for k in truths if str(k) not in results["rows"]], desc=f"{name}: truths"):
        results["rows"][str(k)] = infer_truth(posterior, prob, k, args)
        atomic_write_json(path, results)
    return {"prob": prob, "training": training, "rows": results["rows"]}


def _cell(row, key: str, j: int) -> str:
    return "n/a" if row is None else f"{row[key][j]:+.2f}"


def print_table(name: str, done: dict, args) -> None:
    prob, rows = done["prob"], done["rows"]
    magan_r, magan_pre = magan_rows(name, args)
    names = prob["space"].names
    print(f"\n{name}: NPE (sbi, MAF + CNN) beside magan, error and std in % of the range")
    print("| truth | parameter | truth value | NPE mean +- std | NPE error % | NPE pull "
          "| magan error % | magan pull |")
    print("|---|---|---|---|---|---|---|---|")
    for k in range(len(prob["truths"])):
        r, m = rows[str(k)], magan_r[k]
        for j, p in enumerate(names):
            cells = [str(k) if j == 0 else "", p, f"{r['truth'][j]:.4g}",
                     f"{r['mean'][j]:.4g} +- {r['std'][j]:.2g}", f"{r['error_pct'][j]:+.2f}",
                     f"{r['pull'][j]:+.2f}", _cell(m, "error_pct", j), _cell(m, "pull", j)]
            print("| " + " | ".join(cells) + " |")
    _print_summary(name, done, magan_r, magan_pre)


def _summary(rows) -> tuple[str, str, str]:
    if any(r is None for r in rows):
        return "n/a", "n/a", "n/a"
    err = np.abs([r["error_pct"] for r in rows])
    pull = np.array([r["pull"] for r in rows])
    return (f"{err.max():.2f}", f"{np.sqrt((pull ** 2).mean()):.2f}",
            f"{(np.abs(pull) < 2).mean():.2f}")


def _print_summary(name: str, done: dict, magan_r: list, magan_pre) -> None:
    rows = [done["rows"][str(k)] for k in range(len(done["prob"]["truths"]))]
    tr = done["training"]
    npe_time = (f"simulate {tr['simulate_s']:.0f} s + train {tr['train_s']:.0f} s "
                f"({tr['epochs']} epochs); infer {np.mean([r['infer_s'] for r in rows]):.1f} s")
    fit_s = "n/a" if magan_r[0] is None else f"{np.mean([m['fit_s'] for m in magan_r]):.0f} s"
    pre = "n/a" if magan_pre is None else f"{magan_pre:.0f} s"
    print(f"\n| {name} | max abs error % | rms pull | frac abs(pull) < 2 | time |")
    print("|---|---|---|---|---|")
    print(f"| NPE | {' | '.join(_summary(rows))} | {npe_time} per truth |")
    print(f"| magan | {' | '.join(_summary(magan_r))} | pre-train {pre}; fit {fit_s} per truth |")


def _parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--simulators", default="line,poisson_hits",
                    help=f"comma-separated, from line,{','.join(BENCHMARKS)}")
    ap.add_argument("--simulations", type=int, default=None,
                    help="training simulations (default: magan's default pre-training for that "
                         f"simulator: line {magan_simulations('line')}, a benchmark "
                         f"{magan_simulations('poisson_hits')})")
    ap.add_argument("--max-epochs", type=int, default=200, help="cap on NPE training epochs")
    ap.add_argument("--stop-after-epochs", type=int, default=20,
                    help="early stopping: epochs without a better validation loss")
    ap.add_argument("--batch-size", type=int, default=256, help="NPE training batch size")
    ap.add_argument("--samples", type=int, default=200, help="posterior samples per target image")
    ap.add_argument("--n-targets", type=int, default=None,
                    help="target images per truth (default: magan's, 500 line, 1000 benchmarks)")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--magan-runs", default="runs/generalisation",
                    help="scripts/generalisation.py's --out, for magan's benchmark numbers")
    ap.add_argument("--magan-label", default="results",
                    help="scripts/generalisation.py's --label (its results file)")
    ap.add_argument("--out", default="runs/npe_peer")
    return ap.parse_args()


def main():
    args = _parse_args()
    names = [s.strip() for s in args.simulators.split(",") if s.strip()]
    bad = [n for n in names if n != "line" and n not in BENCHMARKS]
    if bad or not names:
        raise SystemExit(f"--simulators: {bad or 'nothing'} not among line,{','.join(BENCHMARKS)}")
    torch.set_num_threads(args.threads)
    # every image has pixels far out in the tails (the line, the hits): expected, not a fault
    warnings.filterwarnings("ignore", message="Data has extreme outliers")
    for name in names:
        print(f"{name}: NPE budget {budget(args, name)} simulations "
              f"(magan's default pre-training: {magan_simulations(name)})", flush=True)
    done = {name: run_simulator(name, args) for name in names}
    for name in names:
        print_table(name, done[name], args)


if __name__ == "__main__":
    main()
