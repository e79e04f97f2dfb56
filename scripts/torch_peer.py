"""The peer, for the benchmark only: magan's emulator E, siamese S and pre-training step in PyTorch.

Same architecture (magan/networks.py: EmulatorNet with CoordConv, bilinear upsampling, Fourier
features and FiLM; ImageEncoder; SiameseNet with pair and regression heads), same losses
(magan/pretraining.py: S's logistic pair loss + auxiliary regression + lazy R1 every 4 steps; E's
adversarial + auxiliary + energy score), same optimiser (Adam, beta 0.5/0.99) and EMA, written the
way a PyTorch user would (NCHW, eager autograd, S frozen during E's update). Used by
scripts/bench.py, eager and with ``torch.compile`` (all but the lazy-R1 step of S, every 4th, whose
double backward torch.compile does not support); not part of the library (torch is not a
dependency of magan).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def n_downsamples(h: int, w: int, minimum: int = 6) -> int:
    k, s = 0, min(h, w)
    while k < 3 and math.ceil(s / 2) >= minimum:
        s, k = math.ceil(s / 2), k + 1
    return k


def coords(n, h, w, device):
    ys = (torch.arange(h, device=device) + 0.5) / h * 2 - 1
    xs = (torch.arange(w, device=device) + 0.5) / w * 2 - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gy, gx], 0)[None].expand(n, 2, h, w)


def same_pad(x, k, s):
    """TensorFlow/flax 'SAME' padding for a k x k kernel with stride s (NCHW)."""
    h, w = x.shape[2:]
    ph = max((math.ceil(h / s) - 1) * s + k - h, 0)
    pw = max((math.ceil(w / s) - 1) * s + k - w, 0)
    return F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))


class Conv(nn.Conv2d):
    def __init__(self, cin, cout, k, stride=1):
        super().__init__(cin, cout, k, stride=stride, padding=0)
        self.k, self.s = k, stride

    def forward(self, x):
        return super().forward(same_pad(x, self.k, self.s) if self.k > 1 else x)


act = F.leaky_relu


class EmulatorNet(nn.Module):
    def __init__(self, cond_dim, image_shape, noise_dim=8, width=8, fine_layers=2, fourier=3):
        super().__init__()
        h, w, c = image_shape
        self.h, self.w, self.c = h, w, c
        self.noise_dim, self.fourier, self.cond_dim = noise_dim, fourier, cond_dim
        self.levels = n_downsamples(h, w)
        f = 2 ** self.levels
        self.h0, self.w0 = math.ceil(h / f), math.ceil(w / f)
        chans = [width * 2 ** max(self.levels - 1 - i, 0) for i in range(max(self.levels, 1))]
        self.c0 = chans[0]
        self.fc = nn.Linear(cond_dim + noise_dim, self.h0 * self.w0 * chans[0])
        extra = 2 + cond_dim
        self.convs = nn.ModuleList([Conv((chans[i - 1] if i else chans[0]) + extra, chans[i], 3)
                                    for i in range(len(chans))])
        fine_w = 2 * width
        self.fine_in = Conv(chans[-1] + extra + 4 * fourier + 1, fine_w, 1)
        self.film = nn.Linear(cond_dim + noise_dim, 2 * fine_w)
        self.fine = nn.ModuleList([Conv(fine_w, fine_w, 1) for _ in range(fine_layers)])
        self.out = Conv(fine_w, c, 3)

    def context(self, x, cond):
        n, _, hh, ww = x.shape
        return [x, coords(n, hh, ww, x.device),
                cond[:, :, None, None].expand(n, cond.shape[1], hh, ww)]

    def forward(self, cond, z, pix):
        n = cond.shape[0]
        x = act(self.fc(torch.cat([cond, z], 1))).view(n, self.h0, self.w0, self.c0)
        x = x.permute(0, 3, 1, 2)
        for i, conv in enumerate(self.convs):
            if i > 0:
                x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            x = act(conv(torch.cat(self.context(x, cond), 1)))
        if self.levels > 0:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        parts = self.context(x, cond)
        hh, ww = x.shape[2:]
        freqs = math.pi * 2.0 ** torch.arange(self.fourier, device=x.device)
        ang = (parts[1][:, :, None] * freqs[None, None, :, None, None]).reshape(n, -1, hh, ww)
        parts += [torch.sin(ang), torch.cos(ang),
                  F.pad(pix, (0, ww - self.w, 0, hh - self.h))]
        x = self.fine_in(torch.cat(parts, 1))
        gamma, beta = self.film(torch.cat([cond, z], 1)).chunk(2, 1)
        x = x * (1 + gamma[:, :, None, None]) + beta[:, :, None, None]
        for conv in self.fine:
            x = act(conv(x))
        return self.out(x)[:, :, :self.h, :self.w]


class ImageEncoder(nn.Module):
    def __init__(self, image_shape, width=8, features=64):
        super().__init__()
        h, w, c = image_shape
        self.levels = n_downsamples(h, w)
        self.stem = Conv(c + 2, width, 3)
        ch, downs = width, []
        for _ in range(self.levels):
            downs.append(Conv(ch, 2 * ch, 4, 2))
            ch *= 2
        self.downs = nn.ModuleList(downs)
        hh, ww = h, w
        for _ in range(self.levels):
            hh, ww = math.ceil(hh / 2), math.ceil(ww / 2)
        self.fc = nn.Linear(hh * ww * ch, features)

    def forward(self, x):
        n, _, h, w = x.shape
        x = act(self.stem(torch.cat([x, coords(n, h, w, x.device)], 1)))
        for conv in self.downs:
            x = act(conv(x))
        return act(self.fc(x.flatten(1)))


class SiameseNet(nn.Module):
    def __init__(self, image_shape, param_dim, width=8, features=64):
        super().__init__()
        self.branch = ImageEncoder(image_shape, width, features)
        self.head1 = nn.Linear(2 * features, features)
        self.head2 = nn.Linear(features, 1)
        self.aux = nn.Linear(features, param_dim)

    def pair_from_features(self, fa, fb):
        return self.head2(act(self.head1(torch.cat([(fa - fb).abs(), fa * fb], 1))))[:, 0]

    def regress(self, f):
        return torch.sigmoid(self.aux(f))


def energy_score(e1, e2, x1, x2):
    def norm(a, b):
        return torch.sqrt(((a - b) ** 2).flatten(1).sum(1) + 1e-8)

    cross = 0.25 * (norm(e1, x1) + norm(e1, x2) + norm(e2, x1) + norm(e2, x2))
    return (cross - 0.5 * norm(e1, e2)).mean()


class PretrainStep:
    """One magan pre-training step (defaults of PretrainConfig) on a fixed batch."""

    def __init__(self, param_dim, image_shape, noise_dim=8, emulator_width=8, siamese_width=8,
                 features=64, r1_gamma=1.0, r1_every=4, aux_weight=10.0, energy_weight=10.0,
                 ema_decay=0.999, compile=False):
        self.e = EmulatorNet(param_dim, image_shape, noise_dim, emulator_width)
        self.s = SiameseNet(image_shape, param_dim, siamese_width, features)
        self.ema = [p.detach().clone() for p in self.e.parameters()]
        self.opt_e = torch.optim.Adam(self.e.parameters(), 1e-3, betas=(0.5, 0.99))
        self.opt_s = torch.optim.Adam(self.s.parameters(), 3e-4, betas=(0.5, 0.99))
        self.h, self.w = image_shape[:2]
        self.noise_dim, self.r1_gamma, self.r1_every = noise_dim, r1_gamma, r1_every
        self.aux_weight, self.energy_weight, self.ema_decay = aux_weight, energy_weight, ema_decay
        self.i = 0
        self.s_loss = torch.compile(self._s_loss, dynamic=False) if compile else self._s_loss
        # torch.compile (aot_autograd) cannot differentiate twice, which R1 needs: it stays eager
        self.s_loss_r1 = self._s_loss_r1
        self.e_loss = torch.compile(self._e_loss, dynamic=False) if compile else self._e_loss

    def emulate(self, unit):
        n = unit.shape[0]
        return self.e(unit, torch.randn(n, self.noise_dim), torch.randn(n, 1, self.h, self.w))

    def _s_loss(self, x1, x2, fake, unit):
        s = self.s
        f1, f2, ff = s.branch(x1), s.branch(x2), s.branch(fake)
        real, fl = s.pair_from_features(f1, f2), s.pair_from_features(f1, ff)
        adv = F.softplus(-real).mean() + F.softplus(fl).mean()
        aux = 0.5 * (((s.regress(f1) - unit) ** 2).mean() + ((s.regress(f2) - unit) ** 2).mean())
        return adv + self.aux_weight * aux

    def _s_loss_r1(self, x1, x2, fake, unit):
        x1, x2 = x1.detach().requires_grad_(True), x2.detach().requires_grad_(True)
        base = self._s_loss(x1, x2, fake, unit)
        real = self.s.pair_from_features(self.s.branch(x1), self.s.branch(x2)).sum()
        ga, gb = torch.autograd.grad(real, (x1, x2), create_graph=True)
        r1 = (ga.pow(2).flatten(1).sum(1) + gb.pow(2).flatten(1).sum(1)).mean()
        return base + 0.5 * self.r1_gamma * self.r1_every * r1

    def _e_loss(self, x1, x2, unit):
        fake, fake2 = self.emulate(unit), self.emulate(unit)
        with torch.no_grad():
            f1 = self.s.branch(x1)
        ff = self.s.branch(fake)
        adv = F.softplus(-self.s.pair_from_features(f1, ff)).mean()
        aux = ((self.s.regress(ff) - unit) ** 2).mean()
        return adv + self.aux_weight * aux + self.energy_weight * energy_score(fake, fake2, x1, x2)

    def __call__(self, unit, x1, x2):
        with torch.no_grad():
            fake = self.emulate(unit)
        loss_fn = self.s_loss_r1 if self.i % self.r1_every == 0 else self.s_loss
        self.opt_s.zero_grad(set_to_none=True)
        loss_fn(x1, x2, fake, unit).backward()
        self.opt_s.step()
        for p in self.s.parameters():
            p.requires_grad_(False)
        self.opt_e.zero_grad(set_to_none=True)
        loss = self.e_loss(x1, x2, unit)
        loss.backward()
        self.opt_e.step()
        for p in self.s.parameters():
            p.requires_grad_(True)
        with torch.no_grad():
            for m, p in zip(self.ema, self.e.parameters()):
                m.mul_(self.ema_decay).add_(p, alpha=1 - self.ema_decay)
        self.i += 1
        return loss

    def n_params(self):
        return (sum(p.numel() for p in self.e.parameters()),
                sum(p.numel() for p in self.s.parameters()))


def main():
    """``python scripts/torch_peer.py '{"param_dim": 4, "shape": [28, 28, 1], ...}'``: time the
    step and print one JSON line (scripts/bench.py runs this in a subprocess with a timeout)."""
    import json
    import sys
    import time

    a = json.loads(sys.argv[1])
    torch.manual_seed(0)
    h, w, c = a["shape"]
    st = PretrainStep(a["param_dim"], a["shape"], a["noise_dim"], a["emulator_width"],
                      a["siamese_width"], a["features"], r1_gamma=a["r1_gamma"],
                      r1_every=a["r1_every"], aux_weight=a["aux_weight"],
                      energy_weight=a["energy_weight"], compile=a["compile"])
    b = a["batch"]
    unit, x1, x2 = torch.rand(b, a["param_dim"]), torch.randn(b, c, h, w), torch.randn(b, c, h, w)
    t0 = time.perf_counter()
    for _ in range(8):  # both S variants (with and without R1) compiled / warmed up
        st(unit, x1, x2)
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(a["reps"]):
        st(unit, x1, x2)
    sec = (time.perf_counter() - t0) / a["reps"]
    print(json.dumps({"s_per_step": sec, "steps_per_s": 1 / sec, "warmup_s": warm,
                      "threads": torch.get_num_threads(), "torch": torch.__version__}))


if __name__ == "__main__":
    main()
