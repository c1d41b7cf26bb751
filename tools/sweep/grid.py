"""The trials of a sweep: ``--experiments`` x ``--envs`` x every ``--grid`` axis x ``--seeds``."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

# Flags the sweep sets for every trial; they may not appear in --grid or after --.
CONTROLLED_FLAGS = ("env", "seed", "log_dir", "num_threads", "device", "gpu")


@dataclass(frozen=True)
class Trial:
    """One run: ``run.py EXPERIMENT --env ENV --seed SEED`` plus grid flag values and extra args."""

    experiment: str
    env: str
    seed: int
    flags: tuple[tuple[str, str], ...] = ()  # (flag, value) of each --grid axis, in --grid order
    extra: tuple[str, ...] = ()  # arguments given after -- (the same for every trial)

    @property
    def name(self) -> str:
        """Log dir name: ``<experiment>_<env>[_<flag>=<value>...]_s<seed>``."""
        parts = [self.experiment, self.env, *(f"{k}={_slug(v)}" for k, v in self.flags), f"s{self.seed}"]
        return "_".join(parts)

    def run_args(self, log_dir: Path | str, num_threads: int, device: str) -> list[str]:
        """Arguments after ``run.py`` that start the trial."""
        return [self.experiment, "--env", self.env, "--seed", str(self.seed),
                *(f"--{k}={v}" for k, v in self.flags), *self.extra,
                "--log_dir", str(log_dir), "--num_threads", str(num_threads), "--device", device]


def _slug(value: str) -> str:
    """A flag value as it appears in a dir name: spaces and path-unsafe characters become '-'."""
    return re.sub(r"[^A-Za-z0-9.+\-]", "-", value.strip())


def parse_list(text: str, what: str) -> list[str]:
    """``"a,b , c"`` -> ``["a", "b", "c"]``; duplicates and empty lists raise ValueError."""
    items = [s.strip() for s in text.split(",") if s.strip()]
    if not items:
        raise ValueError(f"--{what} is empty")
    dup = sorted({s for s in items if items.count(s) > 1})
    if dup:
        raise ValueError(f"--{what} lists {', '.join(dup)} more than once")
    return items


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"``, ``"0-2"`` or mixed (``"0-2,7"``) -> ``[0, 1, 2, (7)]``."""
    seeds: list[int] = []
    for part in parse_list(text, "seeds"):
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise ValueError(f"--seeds {text!r}: {part!r} is not a seed (N) or a range (N-M)")
        lo, hi = int(m.group(1)), int(m.group(2) if m.group(2) is not None else m.group(1))
        if hi < lo:
            raise ValueError(f"--seeds {text!r}: empty range {part!r}")
        seeds.extend(range(lo, hi + 1))
    if max(seeds) > 2**32 - 1:
        raise ValueError(f"--seeds must be in [0, 2**32 - 1], got {max(seeds)}")
    dup = sorted({s for s in seeds if seeds.count(s) > 1})
    if dup:
        raise ValueError(f"--seeds {text!r} lists seed {dup[0]} more than once")
    return seeds


def _flag_name(token: str) -> str | None:
    return token[2:].split("=", 1)[0] if token.startswith("--") and len(token) > 2 else None


def parse_grid(specs: Iterable[str]) -> list[tuple[str, list[str]]]:
    """``["kl_coeff=0,0.01", "lr=1e-3"]`` -> ``[("kl_coeff", ["0", "0.01"]), ("lr", ["1e-3"])]``.

    Values are comma-separated; a list-valued flag takes its entries space-separated inside one
    value (``--grid "hidden_sizes=64 64,256 256"``). A leading ``--`` on the flag is allowed.

    Raises:
        ValueError: bad syntax, a flag the sweep sets itself, a flag or value given twice.
    """
    grid: list[tuple[str, list[str]]] = []
    for spec in specs:
        flag, sep, values = spec.partition("=")
        flag = flag.strip().removeprefix("--")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", flag):
            raise ValueError(f"--grid {spec!r}: expected FLAG=VALUE[,VALUE...], e.g. kl_coeff=0,0.01")
        if flag in CONTROLLED_FLAGS:
            raise ValueError(f"--grid {spec!r}: --{flag} is set by the sweep "
                             "(use --envs / --seeds / --cpus_per_trial / --gpus_per_trial / --root)")
        if any(flag == f for f, _ in grid):
            raise ValueError(f"--grid {flag}=... is given more than once; list its values in one --grid")
        vals = [v.strip() for v in values.split(",")]
        if not all(vals):
            raise ValueError(f"--grid {spec!r}: empty value")
        if len(set(vals)) != len(vals):
            raise ValueError(f"--grid {spec!r}: a value is listed more than once")
        grid.append((flag, vals))
    return grid


def expand_grid(experiments: Sequence[str], envs: Sequence[str], seeds: Sequence[int],
                grid: Sequence[tuple[str, Sequence[str]]] | dict[str, Sequence[str]] = (),
                extra: Sequence[str] = ()) -> list[Trial]:
    """Every (experiment, env, grid combination, seed), in that nesting order.

    Raises:
        ValueError: two trials would share a log dir name (values equal after :func:`_slug`), or
            ``extra`` sets a flag the sweep controls or a ``grid`` flag.
    """
    axes = list(grid.items()) if isinstance(grid, dict) else list(grid)
    extra = tuple(t for t in extra if t != "--")
    for token in extra:
        name = _flag_name(token)
        if name in CONTROLLED_FLAGS:
            raise ValueError(f"--{name} after -- is set by the sweep for every trial "
                             "(use --envs / --seeds / --cpus_per_trial / --gpus_per_trial / --root)")
        if name is not None and any(name == f for f, _ in axes):
            raise ValueError(f"--{name} is both a --grid flag and an extra argument")
    combos = list(itertools.product(*[[(f, str(v)) for v in vals] for f, vals in axes]))
    trials = [Trial(e, env, int(s), tuple(combo), extra)
              for e in experiments for env in envs for combo in combos for s in seeds]
    seen: dict[str, Trial] = {}
    for t in trials:
        if t.name in seen:
            raise ValueError(f"two trials would share the log dir {t.name!r}: {seen[t.name]} and {t}")
        seen[t.name] = t
    return trials
