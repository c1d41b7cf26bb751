#!/usr/bin/env python
"""Old name of ``python run.py plot LOGDIR... [--metric KEY] [--out FILE]`` (tools/plot.py)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tools.plot import plot_command  # noqa: E402

plot_command(prog_name="scripts/plot_curves.py")
