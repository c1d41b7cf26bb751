"""Capture and restore the state of a gymnasium ``SyncVectorEnv`` of MuJoCo (or pure-Python) envs
(or of ``environments.workers.WorkerVectorEnv``, whose workers run the same functions), so that
a resumed run continues the interrupted episodes exactly (``--snapshot_buffer``).

Pickling the envs does not work in general: gymnasium's MuJoCo envs pickle as constructor
arguments (EzPickle), so the simulator state is lost, and models with meshes pickle to hundreds of
megabytes. Instead every layer of each sub-env's wrapper chain contributes its plain attributes
(numbers, strings, numpy arrays, numpy generators and containers of these: step counters, goals,
stages, RNG states), each MuJoCo ``MjModel`` the arrays envs edit between episodes
(:data:`MODEL_FIELDS`: object and site placements), and each ``MjData`` its integration state (``mj_getState`` with
``mjSTATE_INTEGRATION``: time, qpos, qvel, act, warm start, controls, applied forces, mocap poses);
derived quantities (positions of bodies, contacts) are recomputed by the next ``mj_step``. Spaces, models, renderers and
callables are left alone (they are rebuilt identically from the run's configuration).
"""

from __future__ import annotations

import copy
from typing import Any

import mujoco
import numpy as np

_PLAIN = (bool, int, float, complex, str, bytes, type(None), np.ndarray, np.generic,
          np.random.Generator, np.random.RandomState)
_STATE = mujoco.mjtState.mjSTATE_INTEGRATION
# Model arrays that envs edit between episodes (object placement per task variation, goals).
MODEL_FIELDS = ("body_pos", "body_quat", "site_pos", "site_quat", "geom_pos", "geom_quat",
                "geom_size", "eq_data")


def _is_plain(value: Any) -> bool:
    if isinstance(value, _PLAIN):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, (str, int)) and _is_plain(v) for k, v in value.items())
    return False


def _layers(env) -> list:
    """The wrapper chain of ``env``, outermost first, ending with the unwrapped env."""
    layers = [env]
    while hasattr(layers[-1], "env"):
        layers.append(layers[-1].env)
    return layers


def capture_env(env) -> list[dict[str, Any]]:
    """Per layer of ``env``: its plain attributes and, for each MjData attribute, its state vector."""
    out = []
    for layer in _layers(env):
        plain, physics, model_arrays = {}, {}, {}
        for name, value in vars(layer).items():
            if isinstance(value, mujoco.MjModel):
                model_arrays[name] = {f: getattr(value, f).copy() for f in MODEL_FIELDS}
            elif isinstance(value, mujoco.MjData):
                model = next(v for v in vars(layer).values() if isinstance(v, mujoco.MjModel))
                state = np.empty(mujoco.mj_stateSize(model, _STATE))
                mujoco.mj_getState(model, value, state, _STATE)
                physics[name] = state
            elif _is_plain(value):
                plain[name] = copy.deepcopy(value)
        out.append({"plain": plain, "physics": physics, "model": model_arrays})
    return out


def restore_env(env, state: list[dict[str, Any]]) -> None:
    """Inverse of :func:`capture_env` on an env built the same way.

    Raises:
        ValueError: if the wrapper chain has a different length (a different env).
    """
    layers = _layers(env)
    if len(layers) != len(state):
        raise ValueError(f"env state has {len(state)} layers, the env has {len(layers)}")
    for layer, saved in zip(layers, state):
        for name, value in saved["plain"].items():
            setattr(layer, name, copy.deepcopy(value))
        for name, arrays in saved["model"].items():
            model = getattr(layer, name)
            for field, array in arrays.items():
                getattr(model, field)[...] = array
        for name, vector in saved["physics"].items():
            data = getattr(layer, name)
            model = next(v for v in vars(layer).values() if isinstance(v, mujoco.MjModel))
            mujoco.mj_setState(model, data, np.asarray(vector), _STATE)
            # No mj_forward: the next mj_step recomputes every derived quantity from this state,
            # and a forward pass here changes the result in the last bits.


def _map_sub_envs(vector_env, fn, args=None) -> list:
    """``fn(sub_env)`` (or ``fn(sub_env, args[i])``) for every sub-env, in order: in this process
    for a ``SyncVectorEnv``, in the worker processes for a vector env with ``map_envs``
    (``environments.workers.WorkerVectorEnv``, ``--n_workers`` > 1)."""
    if hasattr(vector_env, "map_envs"):
        return vector_env.map_envs(fn, args)
    envs = vector_env.envs
    return [fn(e) for e in envs] if args is None else [fn(e, a) for e, a in zip(envs, args)]


def capture_vector_env(vector_env) -> dict[str, Any]:
    """State of every sub-env of a ``SyncVectorEnv`` (or a worker vector env) plus its autoreset
    flags."""
    return {"envs": _map_sub_envs(vector_env, capture_env),
            "autoreset": np.array(vector_env._autoreset_envs, copy=True)}


def restore_vector_env(vector_env, state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_vector_env`; the state may come from a run with another number of
    env workers.

    Raises:
        ValueError: if the number of sub-envs differs.
    """
    if len(state["envs"]) != vector_env.num_envs:
        raise ValueError(f"saved {len(state['envs'])} sub-envs, the vector env has {vector_env.num_envs}")
    _map_sub_envs(vector_env, restore_env, state["envs"])
    vector_env._autoreset_envs[:] = state["autoreset"]
