"""Every multi-task suite of the QMP and CTPG papers, registered with gymnasium.

``gymnasium.make(ID, task=k)`` gives task k's env (one-hot appended, time limit applied);
``gymnasium.make_vec(ID, num_envs=E)`` gives all T tasks in one SyncVectorEnv with E
copies per task (T * E sub-envs, task-major; ``n_workers=N`` steps them in N processes,
:mod:`environments.workers`). :func:`get_suite` returns the
:class:`~environments.base.TaskSuite` the learner uses. Any registered gymnasium id with a
Box action space also works as a one-task suite (e.g. ``HalfCheetah-v5``).
"""

from __future__ import annotations

import importlib
import os
from typing import Any

import gymnasium as gym

from environments.base import TaskSuite

os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering by default

# id -> "module:builder"; each builder is ``build(sparse_tasks=()) -> TaskSuite``.
SUITES: dict[str, str] = {
    "MazeLarge-10-v0": "environments.maze:build_maze_large_10",
    "MazeQuick-4-v0": "environments.maze:build_maze_quick_4",
    "MetaWorldMT10-v2": "environments.metaworld_mt:build_mt10",
    "MetaWorldMT50-v2": "environments.metaworld_mt:build_mt50",
    "MetaWorldCDS-v1": "environments.metaworld_cds:build_cds",
    "JacoReachMT5-v1": "environments.jaco:build_jaco_reach_mt5",
    "Walker2dMT4-v0": "environments.walker:build_walker2d_mt4",
    "KitchenMTEasy-v0": "environments.kitchen:build_kitchen_mt_easy",
    "HalfCheetahMT5-v0": "environments.halfcheetah:build_halfcheetah_mt5",
    "HalfCheetahMT8-v0": "environments.halfcheetah:build_halfcheetah_mt8",
}


def known_env_ids() -> list[str]:
    return list(SUITES)


def get_suite(env_id: str, sparse_tasks: tuple[int, ...] = ()) -> TaskSuite:
    """The suite registered under ``env_id``.

    Raises:
        ValueError: unknown id (the message lists the known ids), or a ``sparse_tasks``
            index the suite rejects.
    """
    if env_id in SUITES:
        module_name, builder = SUITES[env_id].split(":")
        module = importlib.import_module(module_name)
        return getattr(module, builder)(sparse_tasks=tuple(sparse_tasks))
    from environments.single import build_single_task_suite, is_single_task_id

    if is_single_task_id(env_id):
        if sparse_tasks:
            raise ValueError(f"--sparse_tasks is not supported by the one-task env {env_id}")
        return build_single_task_suite(env_id)
    raise ValueError(
        f"--env={env_id!r} is not a known env id. Allowed: {', '.join(SUITES)}, "
        "or any registered gymnasium id with a Box action space (e.g. HalfCheetah-v5)."
    )


def check_sparse_tasks(env_id: str, num_tasks: int, sparse_tasks: tuple[int, ...]) -> None:
    """Raise ValueError naming --sparse_tasks if an index is outside ``[0, num_tasks)``."""
    bad = [k for k in sparse_tasks if not 0 <= k < num_tasks]
    if bad:
        raise ValueError(
            f"--sparse_tasks {bad} out of range for {env_id}: allowed 0..{num_tasks - 1}"
        )


def _make_task(
    suite_id: str,
    task: int = 0,
    test: bool = False,
    seed: int = 0,
    sparse_tasks: tuple[int, ...] = (),
    render_mode: str | None = None,
    **_: Any,
) -> gym.Env:
    return get_suite(suite_id, sparse_tasks).make_env(
        task, test=test, seed=seed, render_mode=render_mode
    )


def _make_vector(
    suite_id: str,
    num_envs: int = 1,
    test: bool = False,
    seed: int = 0,
    sparse_tasks: tuple[int, ...] = (),
    render_mode: str | None = None,
    n_workers: int = 1,
    **_: Any,
) -> gym.vector.VectorEnv:
    return get_suite(suite_id, sparse_tasks).make_vector_env(
        num_envs, test=test, seed=seed, render_mode=render_mode, n_workers=n_workers
    )


for _env_id in SUITES:
    if _env_id not in gym.registry:
        gym.register(
            id=_env_id,
            entry_point=_make_task,
            vector_entry_point=_make_vector,
            kwargs={"suite_id": _env_id},
            disable_env_checker=True,
        )
