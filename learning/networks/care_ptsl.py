"""``care_ptsl``: CARE's task-attended encoder with a PTSL trunk (PTSL paper's "CARE + PTSL").

PTSL's strongest configuration keeps CARE's mixture-of-experts state encoder and task context
and replaces CARE's output MLP by PTSL's projected task-specific layers (anchors §2.1, §2.5: the
PAL network replaces the trunk of actor and critic, JosselinSomervilleRoberts/PTSL
``mtrl/agent/components/actor.py`` lines 393-404; widths 326 x 3 with pal_dim 50 on MT10 and
274 x 3 with pal_dim 32 on MT50 1M match CARE's 400 x 3 parameter count):

    x_tb = [z_tb, c_t]                    CARE's encoding (learning/networks/care.py), (T, B, Z + C)
    y_tb = PTSL_t(x_tb)                   task t's PTSL network (learning/networks/ptsl.py), (T, B, out)

Both CARE arrangements apply (``care.py``): with ``shared`` and ``detach_shared`` this is the mtrl
actor; the mtrl critic is ``learning/q_functions/care_twin_q.py``.
"""

from __future__ import annotations

import torch

from learning.networks.care import CAREMLP
from learning.networks.ptsl import PTSLMLP


class CAREPTSLMLP(CAREMLP):
    """CARE encoder + PTSL trunk. Shapes: (T or 1, B, in_dim) -> (T, B, out_dim).

    Options: CARE's (``num_experts``, encoder/context sizes, ``shared``, ``detach_shared``), PTSL's
    ``pal_dim``, ``shared_projection`` and ``residual_mode``. At initialisation the PTSL task branches
    output zero, so the network equals a CARE network with the same shared weights (tested).

    Raises:
        ValueError: as CAREMLP and PTSLMLP (embedding shape, residual mode, unequal hidden sizes
        with a shared projection).
    """

    def __init__(
        self,
        num_tasks: int,
        in_dim: int,
        hidden_sizes: tuple[int, ...],
        out_dim: int,
        init: str = "xavier_uniform",
        pal_dim: int = 50,
        shared_projection: bool = True,
        residual_mode: str = "none",
        **care_options,
    ):
        super().__init__(num_tasks, in_dim, hidden_sizes, out_dim, init=init, **care_options)
        del self.hidden, self.output  # CARE's output MLP, replaced by the PTSL trunk
        self.trunk = PTSLMLP(num_tasks, self.encoder.out_dim, hidden_sizes, out_dim, init=init,
                             pal_dim=pal_dim, shared_projection=shared_projection,
                             residual_mode=residual_mode)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Last hidden activations of the PTSL trunk, (T, B, hidden_sizes[-1])."""
        return self.trunk.features(self.encode(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(self.encode(x))
