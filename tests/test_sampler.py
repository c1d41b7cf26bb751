"""Collection and evaluation on a tiny deterministic suite of counting envs (reference §2.3, §3.13).

Every toy env observes [steps in this episode, task marker, last action received]; the suite
appends the one-hot task id. The reset observation has step 0, the final observation of an
episode of length L has step L, so the two can never be confused. The reward of every step is
the number of resets the env instance has seen, which tells one episode of an env from the next.

Tasks (time limit 5 for all):
    0: terminates at step 2 and succeeds only on that last step.
    1: runs to the time limit (truncation at step 5), never succeeds.
    2: runs to the time limit and succeeds only on the truncated last step.
"""

import gymnasium as gym
import numpy as np
import pytest
import torch

from environments.base import TaskSuite
from learning.policies.behaviour import OwnPolicy, SwitchState
from learning.policies.mixture_policies_wrapper import MixtureOfPolicies
from learning.policies.tanh_gaussian import TanhGaussianPolicy
from learning.replay_buffer import TaskReplayBuffer
from learning.sampler import EpisodeRecord, Sampler, evaluate

TIME_LIMIT = 5
TERMINATE_AT = {0: 2, 1: None, 2: None}
SUCCESS_AT = {0: 2, 1: None, 2: TIME_LIMIT}
EPISODE_LENGTH = {0: 2, 1: TIME_LIMIT, 2: TIME_LIMIT}
MARKER = {0: 10.0, 1: 20.0, 2: 30.0}
NUM_TASKS = 3
OBS_DIM = 3 + NUM_TASKS  # [step, marker, last action] + one-hot
STEP, MARKER_COL, ACTION_COL = 0, 1, 2


class CountingEnv(gym.Env):
    observation_space = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def __init__(self, task):
        self.task, self.resets, self.steps = task, 0, 0

    def _obs(self, action=0.0):
        return np.array([self.steps, MARKER[self.task], action], np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.resets += 1
        self.steps = 0
        return self._obs(), {}

    def step(self, action):
        self.steps += 1
        terminated = self.steps == TERMINATE_AT[self.task]
        info = {"success": self.steps == SUCCESS_AT[self.task]}
        return self._obs(float(action[0])), float(self.resets), terminated, False, info


def toy_suite():
    return TaskSuite(
        env_id="Counting-v0", task_names=("term", "trunc", "trunc-success"),
        make_task_env=lambda task, *, test, seed, render_mode: CountingEnv(task),
        max_episode_steps=TIME_LIMIT, min_reward=0.0)


def make_sampler(envs_per_task, test=False):
    suite = toy_suite()
    indices = suite.network_obs_indices(suite.raw_obs_dim(), include_task_id=True)
    assert len(indices) == OBS_DIM
    return Sampler(suite, envs_per_task, indices, torch.device("cpu"), seed=0, test=test)


def constant_policy(pre_tanh_means):
    """T policies acting tanh(pre_tanh_means[j]) (std e^-20) whatever the state."""
    policy = TanhGaussianPolicy("separate", NUM_TASKS, OBS_DIM, 1, (4,))
    with torch.no_grad():
        for p in policy.parameters():
            p.zero_()
        policy.net.output.bias[:, 0, 0] = torch.as_tensor(pre_tanh_means, dtype=torch.float32)
        policy.net.output.bias[:, 0, 1] = -20.0
    return policy


def collect_own(envs_per_task, steps):
    sampler = make_sampler(envs_per_task)
    record = EpisodeRecord.empty(NUM_TASKS)
    state = SwitchState.initial(NUM_TASKS, envs_per_task, torch.device("cpu"))
    batch, _ = sampler.collect(OwnPolicy(constant_policy([0.1, 0.2, 0.3])), state, steps, record)
    sampler.close()
    return batch, record


def index(step, env, envs_per_task):
    """Column of (step, env) in a collected batch: steps are concatenated, each (T, E)."""
    return step * envs_per_task + env


def test_terminal_flag_is_set_by_termination_and_not_by_truncation():
    e, steps = 2, 11
    batch, record = collect_own(e, steps)
    assert batch.terminal.shape == (NUM_TASKS, e * steps)
    for t in range(NUM_TASKS):
        for s in range(steps):
            for k in range(e):
                ends_here = s % EPISODE_LENGTH[t] == EPISODE_LENGTH[t] - 1
                expected = 1.0 if ends_here and TERMINATE_AT[t] is not None else 0.0
                assert batch.terminal[t, index(s, k, e)] == expected, (t, s, k)
    # truncation happened (task 1 and 2 episodes ended at the limit) but was never terminal
    assert record.lengths[1] == [TIME_LIMIT] * (2 * e) and record.terminations[1] == [False] * 4
    assert record.terminations[0] == [True] * (5 * e)


def test_next_obs_of_last_step_is_the_final_obs_not_the_reset_obs():
    e, steps = 2, 11
    batch, _ = collect_own(e, steps)
    for t in range(NUM_TASKS):
        length = EPISODE_LENGTH[t]
        for s in range(steps):
            for k in range(e):
                col = index(s, k, e)
                # step counters: the obs is step (s mod L) of an episode, next_obs the one after,
                # including the last step of an episode (next step count = L, not 0)
                assert batch.obs[t, col, STEP] == s % length, (t, s, k)
                assert batch.next_obs[t, col, STEP] == s % length + 1, (t, s, k)
                assert batch.next_obs[t, col, MARKER_COL] == MARKER[t]
                # the action that produced next_obs is the one stored with it
                assert batch.next_obs[t, col, ACTION_COL] == batch.action[t, col, 0]
    # after an episode ends, the next transition starts from the reset observation
    first_of_second_episode = index(EPISODE_LENGTH[0], 0, e)
    assert batch.obs[0, first_of_second_episode, STEP] == 0


def test_transitions_go_to_the_acting_task_row_whatever_policy_acted():
    e, steps = 2, 4
    acting = [1, 2, 0]  # task i always acts with policy acting[i]
    pre_tanh = torch.tensor([-0.5, 0.2, 0.7])
    policy = constant_policy(pre_tanh)
    probs = torch.zeros(NUM_TASKS, NUM_TASKS)
    probs[torch.arange(NUM_TASKS), torch.tensor(acting)] = 1.0
    sampler = make_sampler(e)
    state = SwitchState.initial(NUM_TASKS, e, torch.device("cpu"))
    batch, counts = sampler.collect(MixtureOfPolicies(policy, probs), state, steps,
                                    EpisodeRecord.empty(NUM_TASKS))
    sampler.close()
    expected_counts = torch.zeros(NUM_TASKS, NUM_TASKS, dtype=torch.long)
    for i, j in enumerate(acting):
        expected_counts[i, j] = e * steps
    assert torch.equal(counts, expected_counts)
    buffer = TaskReplayBuffer(NUM_TASKS, 100, OBS_DIM, 1)
    buffer.add(batch)
    stored = buffer.transitions()._asdict()
    for i in range(NUM_TASKS):
        one_hot = torch.zeros(NUM_TASKS)
        one_hot[i] = 1.0
        for field in (batch.obs, batch.next_obs, stored["obs"], stored["next_obs"]):
            assert torch.all(field[i, :, MARKER_COL] == MARKER[i])
            assert torch.equal(field[i, :, 3:], one_hot.expand(e * steps, NUM_TASKS))
        # the action of row i is the acting policy's, and it is the one env i received
        action = float(np.tanh(pre_tanh[acting[i]].item()))
        for act in (batch.action, stored["action"]):
            torch.testing.assert_close(act[i, :, 0], torch.full((e * steps,), action))
        torch.testing.assert_close(batch.next_obs[i, :, ACTION_COL], batch.action[i, :, 0])


def test_success_on_the_last_step_is_read_from_final_info():
    e, steps = 2, 10
    _, record = collect_own(e, steps)
    assert record.successes[0] == [True] * (5 * e)  # terminal step success
    assert record.successes[1] == [False] * (2 * e)
    assert record.successes[2] == [True] * (2 * e)  # truncated step success


@pytest.mark.parametrize("episodes", [3, 4])
def test_evaluation_waves_record_only_the_first_episode_of_each_env(episodes):
    e = 2
    sampler = make_sampler(e, test=True)
    resets_at_wave_start = []
    explicit_reset = sampler.reset

    def reset_and_remember():
        explicit_reset()
        resets_at_wave_start.append([env.unwrapped.resets for env in sampler.env.envs])

    sampler.reset = reset_and_remember
    record = evaluate(sampler, OwnPolicy(constant_policy([0.0, 0.0, 0.0])), episodes)
    sampler.close()
    active_per_wave = {3: [2, 1], 4: [2, 2]}[episodes]
    assert len(resets_at_wave_start) == len(active_per_wave)
    for t in range(NUM_TASKS):
        length = EPISODE_LENGTH[t]
        # reward = reset count, so the first episode after a wave's reset returns L * count
        expected = [float(length * resets[t * e + k])
                    for resets, n in zip(resets_at_wave_start, active_per_wave) for k in range(n)]
        assert sorted(record.returns[t]) == sorted(expected), t
        assert record.lengths[t] == [length] * episodes
        assert record.successes[t] == [SUCCESS_AT[t] is not None] * episodes
    # task 0 runs several episodes per wave; only the first one counts
    assert max(resets_at_wave_start[-1][:e]) > resets_at_wave_start[0][0] + 1
