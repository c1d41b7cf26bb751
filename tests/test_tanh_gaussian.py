import torch
from torch.distributions import Normal, TransformedDistribution
from torch.distributions.transforms import TanhTransform

from learning.policies.tanh_gaussian import LOG_STD_MAX, LOG_STD_MIN, TanhGaussianPolicy, tanh_gaussian_log_prob


def test_log_prob_matches_torch_tanh_transform():
    torch.manual_seed(0)
    mean, log_std = torch.randn(3, 5, 4), torch.randn(3, 5, 4) * 0.5
    u = mean + log_std.exp() * torch.randn(3, 5, 4)
    # exact change of variables with torch's TanhTransform Jacobian
    expected = (Normal(mean, log_std.exp()).log_prob(u)
                - TanhTransform().log_abs_det_jacobian(u, torch.tanh(u))).sum(-1)
    torch.testing.assert_close(tanh_gaussian_log_prob(u, mean, log_std), expected, rtol=1e-5, atol=1e-5)
    # and the distribution's own log_prob, away from saturation where atanh is accurate
    small = u.clamp(-2, 2)
    dist = TransformedDistribution(Normal(mean, log_std.exp()), [TanhTransform()])
    torch.testing.assert_close(tanh_gaussian_log_prob(small, mean, log_std),
                               dist.log_prob(torch.tanh(small)).sum(-1), rtol=1e-3, atol=1e-3)


def test_log_prob_is_finite_for_saturated_actions():
    u = torch.tensor([[[30.0, -30.0]]])
    lp = tanh_gaussian_log_prob(u, torch.zeros_like(u), torch.zeros_like(u))
    assert torch.isfinite(lp).all()


def test_policy_sample_shapes_and_log_std_clamp():
    torch.manual_seed(0)
    policy = TanhGaussianPolicy("separate", 3, 6, 2, (16,))
    with torch.no_grad():
        policy.net.output.bias[..., 2:] = 100.0  # log-std head far above the clamp
    out = policy(torch.randn(3, 7, 6))
    assert out.action.shape == (3, 7, 2) and out.log_prob.shape == (3, 7)
    assert (out.action.abs() <= 1).all()
    assert torch.all(out.log_std <= LOG_STD_MAX) and torch.all(out.log_std >= LOG_STD_MIN)
    det = policy.deterministic_action(torch.zeros(3, 1, 6))
    torch.testing.assert_close(det, torch.tanh(policy.distribution_params(torch.zeros(3, 1, 6))[0]).detach())
