"""Strided convolutions whose derivatives, up to the second, run on fast kernels.

The R1 penalty differentiates S's (and D's) input gradient once more with respect to the
weights. For a stride-2 convolution, the input gradient is a transposed (base-dilated)
convolution, and XLA derives the weight gradient of *that* as a convolution with a reversed,
dilated kernel window, which XLA:CPU runs on a slow generic path (most of an R1 step's time on the
line networks; docs/speed.md). :func:`strided_conv` computes the same values with its derivatives
written out:

* forward: ``lax.conv_general_dilated`` (as before);
* input gradient: the transposed convolution XLA derives itself (fast);
* weight gradient: XLA's own (fast at first order);
* derivatives of the input gradient (the second order R1 needs): with respect to the output
  cotangent, the strided convolution again; with respect to the weights, image patches of the
  cotangent times the output cotangent, one matrix product (``_weight_grad``).

Same results as ``lax.conv_general_dilated`` to float rounding, value and first and second
derivatives (tests/nn/test_networks.py). Forward-mode differentiation (``jax.jvp``) of a
``custom_vjp`` function is not supported by JAX; magan's losses use reverse mode only.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

__all__ = ["strided_conv", "conv_general_dilated", "conv_nhwc"]

_NHWC = ("NHWC", "HWIO", "NHWC")


def conv_nhwc(x, w, strides=(1, 1), pads="SAME"):
    """NHWC x HWIO ``lax.conv_general_dilated`` (what ``nnx.Conv`` computes, without its bias)."""
    return jax.lax.conv_general_dilated(x, w, strides, pads, dimension_numbers=_NHWC)


def _patches(x, kh: int, kw: int, strides, pads):
    """(N, Ho, Wo, kh * kw * C): the input window of every output position, in (i, j, c) order
    (the order of an HWIO kernel reshaped to (kh * kw * C, O))."""
    sh, sw = strides
    x = jnp.pad(x, ((0, 0), tuple(pads[0]), tuple(pads[1]), (0, 0)))
    ho, wo = (x.shape[1] - kh) // sh + 1, (x.shape[2] - kw) // sw + 1
    return jnp.concatenate([x[:, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw]
                            for i in range(kh) for j in range(kw)], axis=-1)


def _weight_grad(x, gy, w_shape, strides, pads):
    """d/dW of sum(gy * conv(x, W)): patches of x times gy, (kh, kw, C, O)."""
    kh, kw = w_shape[:2]
    return jnp.einsum("nhwk,nhwo->ko", _patches(x, kh, kw, strides, pads),
                      gy.astype(x.dtype)).reshape(w_shape)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def strided_conv(x, w, strides: tuple[int, int], pads: tuple[tuple[int, int], tuple[int, int]]):
    """NHWC x HWIO convolution with explicit ``pads`` ((top, bottom), (left, right)).

    x (N, H, W, C), w (kh, kw, C, O) -> (N, Ho, Wo, O); derivatives as in the module docstring.
    """
    return conv_nhwc(x, w, strides, pads)


def _strided_fwd(x, w, strides, pads):
    return conv_nhwc(x, w, strides, pads), (x, w)


def _strided_bwd(strides, pads, res, gy):
    x, w = res
    _, weight_vjp = jax.vjp(lambda k: conv_nhwc(x, k, strides, pads), w)
    return _input_grad(gy, w, x.shape, strides, pads), weight_vjp(gy)[0]


strided_conv.defvjp(_strided_fwd, _strided_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _input_grad(gy, w, x_shape, strides, pads):
    """d/dx of sum(gy * conv(x, w)): the transposed convolution, as XLA derives it."""
    _, input_vjp = jax.vjp(lambda x: conv_nhwc(x, w, strides, pads), jnp.zeros(x_shape, gy.dtype))
    return input_vjp(gy)[0]


def _input_grad_fwd(gy, w, x_shape, strides, pads):
    return _input_grad(gy, w, x_shape, strides, pads), (gy, w)


def _input_grad_bwd(x_shape, strides, pads, res, c):
    gy, w = res
    return strided_conv(c, w, strides, pads), _weight_grad(c, gy, w.shape, strides, pads)


_input_grad.defvjp(_input_grad_fwd, _input_grad_bwd)


def conv_general_dilated(lhs, rhs, window_strides, padding, *, lhs_dilation=None,
                         rhs_dilation=None, dimension_numbers=None, feature_group_count=1,
                         precision=None, **kwargs):
    """``lax.conv_general_dilated``'s signature, its options keyword-only (as
    ``nnx.Conv(conv_general_dilated=...)`` calls it): 2-D NHWC x HWIO convolutions without
    dilation or groups go to :func:`strided_conv`, anything else to ``lax.conv_general_dilated``."""
    if (lhs.ndim != 4 or feature_group_count != 1 or precision is not None
            or any(v is not None for v in kwargs.values())  # preferred_element_type, out_sharding
            or any(d != 1 for d in (lhs_dilation or ()))
            or any(d != 1 for d in (rhs_dilation or ()))
            or jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
            != jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, _NHWC)):
        return jax.lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation,
                                            rhs_dilation, dimension_numbers, feature_group_count,
                                            precision=precision, **kwargs)
    pads = (jax.lax.padtype_to_pads(lhs.shape[1:3], rhs.shape[:2], window_strides, padding)
            if isinstance(padding, str) else padding)
    return strided_conv(lhs, rhs, tuple(int(s) for s in window_strides),
                        tuple((int(a), int(b)) for a, b in pads))
