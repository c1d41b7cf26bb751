"""dowel outputs: an order-keeping CSV and a console summary without per-task keys."""

from __future__ import annotations

import csv
import math
import os

import dowel
from dowel import TabularInput
from dowel.simple_outputs import FileOutput


class OrderedCsvOutput(FileOutput):
    """dowel CSV output whose columns keep first-seen order (dowel's CsvOutput orders them by a
    set, which differs between processes). A key that appears later is appended as a new
    column and earlier rows are rewritten with empty cells for it."""

    def __init__(self, file_name: str):
        super().__init__(file_name)
        self._filename, self._fieldnames, self._writer = file_name, None, None

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
