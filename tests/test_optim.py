"""learning/algorithms/optim.py: the implementation chosen, and the same Adam update as torch's loop."""

import pytest
import torch

from learning.algorithms.optim import adam


def test_fused_on_cpu_and_the_other_implementations():
    p = [torch.nn.Parameter(torch.zeros(3))]
    assert adam(p, 1e-3).defaults["fused"] is True
    assert adam(p, 1e-3, "foreach").defaults["foreach"] is True
    assert adam(p, 1e-3, "for-loop").defaults["foreach"] is False
    with pytest.raises(ValueError, match="fused, foreach, for-loop"):
        adam(p, 1e-3, "sgd")


def test_fused_steps_equal_the_single_tensor_loop():
    """Three steps on stacked (T, in, out) weights: fused and foreach match the per-parameter loop."""
    torch.manual_seed(0)
    init = [torch.randn(4, 5, 6), torch.randn(4, 1, 6)]
    results = {}
    for impl in ("fused", "foreach", "for-loop"):
        params = [torch.nn.Parameter(x.clone()) for x in init]
        opt = adam(params, 1e-2, impl)
        for step in range(3):
            opt.zero_grad()
            loss = sum(((q - step) ** 2 * torch.arange(q.numel()).reshape(q.shape)).sum() for q in params)
            loss.backward()
            opt.step()
        results[impl] = params
    for impl in ("fused", "foreach"):
        for a, b in zip(results[impl], results["for-loop"]):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(results["fused"][0], init[0])  # the parameters did move
