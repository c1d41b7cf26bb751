"""learning/policies/inference.py: the acting forward equals the networks' own forward, bit for bit."""

import pytest
import torch

from learning.networks import build_network
from learning.policies.inference import inference_forward


@pytest.mark.parametrize("arch", ["separate", "multihead", "ptsl"])
@pytest.mark.parametrize("leading", [1, 4])
def test_inference_forward_equals_module_forward(arch, leading):
    torch.manual_seed(0)
    net = build_network(arch, 4, 6, (16, 16), 3)
    with torch.no_grad():
        for p in net.parameters():  # random everywhere (no zero biases), so every term counts
            p.normal_()
        x = torch.randn(leading, 5, 6)
        expected = net(x)
        got = inference_forward(net, x.clone())
    assert got.shape == (4, 5, 3)
    assert torch.equal(got, expected)
