"""What CTPG adds to a run's collection and update loop (He et al., NeurIPS 2024; anchors §1).

The control learner (SAC, DnC, PCGrad ...) is untouched; CTPG only changes who acts while
collecting. :class:`GuideTraining` bundles the guide learner, its behaviour policy, the segment
storage and the schedule, and gives the trainer five hooks:

- :meth:`observe` after every env step collected with the guide behaviour (segment recording);
- :meth:`update` after the control updates of an iteration (one guide step per
  ``guide_update_step`` vectorised env steps, anchors §1.4);
- :meth:`evaluated` after each evaluation (guide-block gate refresh, anchors §1.7);
- :meth:`stats` for the epoch's log;
- :meth:`state_dict` / :meth:`load_state_dict` for snapshots.
"""

from __future__ import annotations

import torch

from learning.algorithms.ctpg import CTPGGuide
from learning.policies.ctpg_guide import CTPGBehaviour
from learning.replay_buffer import TransitionBatch
from learning.segment_buffer import SegmentBuffer, SegmentRecorder


class GuideTraining:
    """The guide's side of a CTPG run.

    Args:
        guide: the guide learner.
        behaviour: the guide behaviour policy (acts while collecting).
        buffer: segment storage; ``recorder`` fills it from the step stream.
        recorder: turns (T, E) steps into segments.
        control: the control learner (its ``policy`` and ``log_alpha`` are read live).
        num_tasks: T.
        batch_size: segments per task per guide step.
        update_every: ``guide_update_step``, env steps per task per guide step (10, the release's
            one guide step every 10 env steps with one env per task); with E envs per task one
            collected (T, E) step counts E.
        hindsight: relabel guide actions when training (``--no_hindsight`` turns it off).
    """

    def __init__(self, guide: CTPGGuide, behaviour: CTPGBehaviour, buffer: SegmentBuffer,
                 recorder: SegmentRecorder, control, num_tasks: int, batch_size: int,
                 update_every: int = 10, hindsight: bool = True):
        self.guide, self.behaviour, self.buffer, self.recorder = guide, behaviour, buffer, recorder
        self.control, self.num_tasks, self.batch_size = control, num_tasks, batch_size
        self.update_every, self.hindsight = update_every, hindsight
        self._pending_steps = 0
        self._warm = False  # no update() call yet: the steps pending are the warm-up's
        self._stats: dict[str, torch.Tensor] = {}

    def observe(self, transition: TransitionBatch, done) -> None:
        """Record the step the guide behaviour just took (call after every collected step)."""
        self.recorder.step(transition.obs, transition.action, transition.reward,
                           transition.next_obs, transition.terminal, torch.as_tensor(done),
                           self.behaviour.last_decision, self.behaviour.last_guide_action)
        self._pending_steps += int(transition.reward.shape[1])  # E env steps per task

    def update(self, env_steps_per_task: int) -> None:
        """One guide step per ``update_every`` env steps per task collected since the last call;
        also tells the behaviour the training progress (the filter gate's start).

        The first call (the control's first warm iteration) counts at most ``update_every`` of the
        warm-up's steps: the release runs its first guide step with its first control update, at
        step ``init_steps``, and none for the steps before (DarkDawn233/CTPG
        ``mtrl/experiment/multitask.py`` line 217, ``mtrl/agent/guide_sac.py`` line 1073), so
        there is no catch-up burst of warm-up // ``update_every`` guide steps."""
        self.behaviour.set_step(env_steps_per_task)
        if not self._warm:
            self._pending_steps, self._warm = min(self._pending_steps, self.update_every), True
        n, self._pending_steps = divmod(self._pending_steps, self.update_every)
        if len(self.buffer) == 0:
            return
        active = ~self.behaviour.pending_block if self.behaviour.block_gate else None
        for _ in range(n):
            batch = self.buffer.sample(self.batch_size, active=active)
            self._stats = self.guide.update(batch, self.control.policy, self.control.log_alpha,
                                            hindsight=self.hindsight)

    def evaluated(self, task_success: torch.Tensor | None) -> None:
        """Refresh the guide-block gate: by control log alpha, or per-task success (T,)."""
        if self.behaviour.block_mode == "alpha":
            self.behaviour.refresh_block(log_alpha=self.control.log_alpha)
        elif task_success is not None:
            self.behaviour.refresh_block(success=task_success)

    def stats(self) -> dict[str, float]:
        """Per-task selection statistics and the last guide step's losses, keyed for dowel."""
        out = self.behaviour.selection_stats(reset=True)
        blocked = self.behaviour.pending_block.float().cpu()
        for i in range(self.num_tasks):  # logging only
            out[f"Train/LocalPolicy{i}/GuideBlocked"] = float(blocked[i])
            for key, value in self._stats.items():
                out[f"Train/LocalPolicy{i}/{key}"] = float(value[i])
        for key, value in self._stats.items():
            out[f"Train/{key}"] = float(value.float().mean())
        out["Train/GuideSegments"] = float(len(self.buffer))
        return out

    def state_dict(self, with_buffer: bool) -> dict:
        """Guide networks, temperatures and optimisers; with ``with_buffer`` also the segments and
        the recorder's open segments; the behaviour's gate state."""
        state = {"guide": self.guide.state_dict(),
                 "optimizers": {k: o.state_dict() for k, o in self.guide.optimizers().items()},
                 "pending_block": self.behaviour.pending_block.cpu(),
                 "step": self.behaviour.step, "pending_steps": self._pending_steps}
        if with_buffer:
            state["buffer"] = self.buffer.state_dict()
            state["recorder"] = self.recorder.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.guide.load_state_dict(state["guide"])
        for name, opt in self.guide.optimizers().items():
            opt.load_state_dict(state["optimizers"][name])
        self.behaviour.set_blocked(state["pending_block"])
        self.behaviour.set_step(state["step"])
        self._pending_steps = state["pending_steps"]
        if "buffer" in state:
            self.buffer.load_state_dict(state["buffer"])
            self.recorder.load_state_dict(state["recorder"])
