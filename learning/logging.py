"""dowel outputs: an order-keeping CSV, a console summary without per-task keys, and an
optional Weights & Biases run (``--wandb``); which per-task keys a run logs (``--log_per_task``)."""

from __future__ import annotations

import csv
import math
import netrc
import os
import re
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

import dowel
from dowel import TabularInput
from dowel.simple_outputs import FileOutput


# --log_per_task levels: every per-task key | the per-task keys a reader compares | pooled keys only.
PER_TASK_LEVELS = ("all", "summary", "none")
# Leaves of the per-task keys kept by ``summary``: each task's success and return (evaluation modes
# and training), and the share of its collection steps its own policy took (QMP).
SUMMARY_LEAVES = frozenset({"SuccessRate", "AverageReturn", "MixtureProbs"})
_PER_TASK_KEY = re.compile(r"(?:^|/)(?:Task|LocalPolicy)\d+/(.+)$")


def keep_per_task_key(key: str, level: str, extra_leaves=frozenset()) -> bool:
    """Whether a run with ``--log_per_task level`` logs ``key``.

    Pooled keys are always kept. A per-task key (``.../Task{k}/<leaf>``,
    ``Train/LocalPolicy{i}/<leaf>``) is kept by ``all``; by ``summary`` when its leaf is in
    :data:`SUMMARY_LEAVES` or ``extra_leaves`` (the suite's episode statistics, e.g.
    ``StagesCompleted``), which drops the T x T selection matrix (``Policy{j}Prob``) and the per-task
    losses; never by ``none``.

    Raises:
        ValueError: an unknown level.
    """
    if level not in PER_TASK_LEVELS:
        raise ValueError(f"--log_per_task={level!r}; allowed: {', '.join(PER_TASK_LEVELS)}")
    match = _PER_TASK_KEY.search(key)
    if match is None or level == "all":
        return True
    return level == "summary" and (match.group(1) in SUMMARY_LEAVES or match.group(1) in extra_leaves)


class OrderedCsvOutput(FileOutput):
    """dowel CSV output whose columns keep first-seen order (dowel's CsvOutput orders them by a
    set, which differs between processes). A key that appears later is appended as a new
    column and earlier rows are rewritten with empty cells for it.

    Args:
        file_name: the CSV path.
        resume_after_epoch: continue an existing file (a resumed run): keep its rows whose
            ``Epoch`` is at most this value, drop later ones (written after the snapshot the run
            resumes from) and append; None starts a new file.
    """

    def __init__(self, file_name: str, resume_after_epoch: int | None = None):
        kept, fieldnames = [], None
        if resume_after_epoch is not None and os.path.exists(file_name):
            with open(file_name, newline="") as f:
                reader = csv.DictReader(f)
                fieldnames = reader.fieldnames
                kept = [r for r in reader if int(float(r["Epoch"])) <= resume_after_epoch]
        super().__init__(file_name)
        self._filename, self._fieldnames, self._writer = file_name, None, None
        if fieldnames:
            self._fieldnames = list(fieldnames)
            self._writer = csv.DictWriter(self._log_file, fieldnames=self._fieldnames, restval="")
            self._writer.writeheader()
            self._writer.writerows(kept)
            self._log_file.flush()

    @property
    def types_accepted(self):
        return (TabularInput,)

    def record(self, data, prefix=""):
        if not isinstance(data, TabularInput):
            raise ValueError("Unacceptable type.")
        row = data.as_primitive_dict
        if self._fieldnames is None:
            self._fieldnames = list(row)
            self._writer = csv.DictWriter(self._log_file, fieldnames=self._fieldnames, restval="")
            self._writer.writeheader()
        new = [k for k in row if k not in self._fieldnames]
        if new:
            self._fieldnames += new
            super().close()
            tmp = self._filename + ".tmp"
            os.replace(self._filename, tmp)
            self._log_file = open(self._filename, "w")
            self._writer = csv.DictWriter(self._log_file, fieldnames=self._fieldnames, restval="")
            self._writer.writeheader()
            with open(tmp) as old:
                for old_row in csv.DictReader(old):
                    self._writer.writerow(old_row)
            os.remove(tmp)
        self._writer.writerow(row)
        for k in row:
            data.mark(k)


class SummaryStdOutput(dowel.StdOutput):
    """Console table of the pooled keys only: per-task keys (``Task{k}``, ``LocalPolicy{i}``)
    go to the CSV and TensorBoard but would drown the console (the original sends them to
    wandb only, reference §3.13)."""

    def __init__(self, write=print):
        super().__init__(with_timestamp=False)
        self._write = write

    def record(self, data, prefix=""):
        if isinstance(data, TabularInput):
            rows = [(k, v) for k, v in data.as_primitive_dict.items()
                    if "/Task" not in k and "/LocalPolicy" not in k]
            width = max(len(k) for k, _ in rows) if rows else 0
            lines = [f"{k:<{width}}  {_fmt(v)}" for k, v in rows]
            self._write("\n".join(lines))
            data.mark_str()
        else:
            self._write(prefix + data)


def _fmt(v) -> str:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.6g}"
    return str(v)


WANDB_RUN_ID_FILE = "wandb_run_id.txt"


def wandb_api_key_configured(environ: Mapping[str, str] = os.environ) -> bool:
    """True when wandb could authenticate: ``WANDB_API_KEY`` (or an identity token file) is set,
    or the netrc file (``$NETRC`` or ``~/.netrc``) holds credentials for the wandb host
    (``$WANDB_BASE_URL``, default api.wandb.ai), where ``wandb login`` stores the key."""
    if environ.get("WANDB_API_KEY") or environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    host = urlsplit(environ.get("WANDB_BASE_URL") or "https://api.wandb.ai").netloc
    path = environ.get("NETRC") or str(Path.home() / ".netrc")
    try:
        return bool(host) and netrc.netrc(path).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def wandb_mode(environ: Mapping[str, str] = os.environ) -> str:
    """``offline`` when ``WANDB_MODE`` says offline (or dryrun) or no API key is configured (no
    network is needed; ``wandb sync DIR`` uploads later), ``disabled`` when it says disabled,
    else ``online``."""
    requested = environ.get("WANDB_MODE", "").strip().lower()
    if requested in ("offline", "dryrun"):
        return "offline"
    if requested == "disabled":
        return "disabled"
    return "online" if wandb_api_key_configured(environ) else "offline"


class WandbOutput(dowel.LogOutput):
    """dowel output that sends each tabular dump to a wandb run, at step ``TotalEnvSteps``.

    The run is created in ``log_dir`` (its files under ``log_dir/wandb``) with the run's
    configuration; its id is written to ``log_dir/wandb_run_id.txt`` and a later output on the
    same ``log_dir`` resumes that run. A row without ``TotalEnvSteps``, or whose
    ``TotalEnvSteps`` is below the last step logged, is logged at wandb's own next step.
    Call :meth:`close` to finish the run (dowel's ``remove_output_type`` does not).

    Args:
        config: the run's configuration (``ExperimentConfig.to_dict()``, with extras).
        log_dir: the run's log directory.
        project, entity: wandb project and entity (None: the user's default entity).
        mode: ``online``, ``offline`` or ``disabled``; None: :func:`wandb_mode`.
        name: display name (default: the log dir's name).
    """

    def __init__(self, config: Mapping[str, Any], log_dir: str | os.PathLike, project: str = "qmp",
                 entity: str | None = None, mode: str | None = None, name: str | None = None):
        import wandb

        log_dir = Path(log_dir)
        id_file = log_dir / WANDB_RUN_ID_FILE
        run_id = id_file.read_text().strip() if id_file.exists() else None
        self.mode = mode or wandb_mode()
        self.run = wandb.init(project=project, entity=entity, dir=str(log_dir), config=dict(config),
                              name=name or log_dir.name, id=run_id, resume="allow" if run_id else None,
                              mode=self.mode, reinit="create_new",
                              settings=wandb.Settings(console="off", silent=True))
        if run_id is None and self.mode != "disabled":
            id_file.write_text(self.run.id)
        self._last_step: int | None = None
        self._closed = False

    @property
    def types_accepted(self):
        return (TabularInput,)

    def record(self, data, prefix=""):
        if not isinstance(data, TabularInput):
            raise ValueError("Unacceptable type.")
        row = data.as_primitive_dict
        step = row.get("TotalEnvSteps")
        if isinstance(step, (int, float)) and not isinstance(step, bool) \
                and (self._last_step is None or int(step) >= self._last_step):
            self._last_step = int(step)
            self.run.log(row, step=self._last_step)
        else:
            self.run.log(row)
        for k in row:
            data.mark(k)

    def close(self):
        if not getattr(self, "_closed", True):
            self._closed = True
            self.run.finish()


def make_wandb_output(config_dict: Mapping[str, Any], log_dir: str | os.PathLike) -> WandbOutput:
    """The ``--wandb`` output of a run: project and entity from ``config_dict["wandb_project"]`` /
    ``["wandb_entity"]`` (defaults ``qmp`` / None), mode from :func:`wandb_mode`."""
    return WandbOutput(config_dict, log_dir, project=config_dict.get("wandb_project") or "qmp",
                       entity=config_dict.get("wandb_entity"))
