"""PCGrad (reference §3.10) on constructed gradients with hand-computed results."""

import pytest
import torch
from torch import nn

from learning.algorithms.pcgrad import (merge, pcgrad_backward, per_task_gradients,
                                        project_conflicting, random_orders)
from learning.algorithms.sac import MultiTaskSAC
from learning.networks.multihead import MultiheadMLP
from learning.policies.tanh_gaussian import TanhGaussianPolicy
from learning.q_functions.twin_q import TwinQFunction
from learning.replay_buffer import TransitionBatch

ORDERS = [torch.tensor([[0, 1], [0, 1]]), torch.tensor([[1, 0], [1, 0]]),
          torch.tensor([[1, 0], [0, 1]])]


@pytest.mark.parametrize("order", ORDERS)
def test_conflicting_pair_is_projected(order):
    g = torch.tensor([[1.0, 0.0], [-1.0, 1.0]])  # g1 . g2 = -1 < 0
    out = project_conflicting(g, order)
    # g1 - (g1.g2/|g2|^2) g2 = (1,0) + 0.5 (-1,1); g2 - (g2.g1/|g1|^2) g1 = (-1,1) + (1,0)
    torch.testing.assert_close(out, torch.tensor([[0.5, 0.5], [0.0, 1.0]]))
    assert (out[0] @ g[1]).abs() < 1e-6 and (out[1] @ g[0]).abs() < 1e-6


@pytest.mark.parametrize("order", ORDERS)
def test_non_conflicting_gradients_unchanged(order):
    g = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    torch.testing.assert_close(project_conflicting(g, order), g)


def test_three_tasks_order_matters_and_is_per_task():
    g = torch.tensor([[1.0, 0.0], [-1.0, 0.5], [-0.5, -1.0]])
    # task 0 visits 1 then 2: g0 = (1,0) -> (0.2, 0.4) [vs g1] -> (0.2, 0.4).(-0.5,-1) = -0.5 < 0
    # -> (0.2, 0.4) - (-0.5/1.25)(-0.5, -1) = (0, 0)
    order = torch.tensor([[1, 2, 0], [0, 1, 2], [2, 1, 0]])
    out = project_conflicting(g, order)
    torch.testing.assert_close(out[0], torch.tensor([0.0, 0.0]))
    # task 1: vs g0: dot -1 -> (-1,0.5)+(1,0) = (0, 0.5); vs g2: dot -0.5 -> (0,0.5)+0.4(-0.5,-1)
    torch.testing.assert_close(out[1], torch.tensor([-0.2, 0.1]))


def test_merge_is_the_mean_over_tasks_for_every_element():
    projected = torch.tensor([[1.0, 2.0, 3.0], [3.0, 4.0, -1.0]])
    torch.testing.assert_close(merge(projected), torch.tensor([2.0, 3.0, 1.0]))


def test_pcgrad_backward_hand_computed():
    """A shared w and a per-task h (h[t] used by task t only): as in the original, the head
    slices get zero (not missing) gradients from the other task, so every element gets the mean."""
    w = nn.Parameter(torch.zeros(2))  # shared
    h = nn.Parameter(torch.zeros(2))  # h[t] used by task t only
    losses = torch.stack([w @ torch.tensor([1.0, 0.0]) + h[0], w @ torch.tensor([-1.0, 1.0]) + 2 * h[1]])
    # flattened (w, h): g1 = (1, 0, 1, 0), g2 = (-1, 1, 0, 2); g1.g2 = -1; |g1|^2 = 2, |g2|^2 = 6
    # g1' = g1 + g2/6 = (5/6, 1/6, 1, 1/3); g2' = g2 + g1/2 = (-1/2, 1, 1/2, 2)
    pcgrad_backward(losses, [w, h], order=ORDERS[0])
    torch.testing.assert_close(w.grad, torch.tensor([(5 / 6 - 0.5) / 2, (1 / 6 + 1) / 2]))
    torch.testing.assert_close(h.grad, torch.tensor([1.5 / 2, (1 / 3 + 2) / 2]))


def test_batched_gradients_equal_per_task_backward():
    torch.manual_seed(0)
    net = MultiheadMLP(3, 4, (5,), 2)
    x = torch.randn(1, 6, 4)
    losses = (net(x) ** 2).mean((1, 2))
    params = list(net.parameters())
    grads = per_task_gradients(losses, params, retain_graph=True)
    for t in range(3):
        single = torch.autograd.grad(losses[t], params, retain_graph=True)
        torch.testing.assert_close(grads[t], torch.cat([g.reshape(-1) for g in single]))


def test_random_orders_are_permutations():
    torch.manual_seed(1)
    orders = random_orders(5)
    assert (orders.sort(1).values == torch.arange(5)).all()


def test_sac_update_with_pcgrad_single_task_equals_plain(monkeypatch):
    """With one task PCGrad is the identity: same update as the plain mean reduction."""
    from learning.algorithms import pcgrad
    # fixed visiting order, so that PCGrad draws no random numbers and the SAC noise matches
    monkeypatch.setattr(pcgrad, "random_orders", lambda t, device=None: torch.zeros(t, t, dtype=torch.long))
    batch = TransitionBatch(torch.randn(1, 4, 3), torch.rand(1, 4, 2) * 2 - 1, torch.randn(1, 4),
                            torch.randn(1, 4, 3), torch.zeros(1, 4))
    states = []
    for pc in (False, True):
        torch.manual_seed(2)
        algo = MultiTaskSAC(TanhGaussianPolicy("multihead", 1, 3, 2, (8,)),
                            TwinQFunction("multihead", 1, 3, 2, (8,)), 1, per_task_alpha=True,
                            lr=1e-2, discount=0.9, tau=0.1, reward_scale=1.0, target_entropy=-2.0,
                            task_reduction="mean", use_pc_grad=pc, pc_grad_alpha=pc)
        algo.update(batch)
        states.append(algo.state_dict())
    for k in states[0]:
        torch.testing.assert_close(states[0][k], states[1][k])
