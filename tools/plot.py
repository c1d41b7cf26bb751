"""``python run.py plot``: the public names of :mod:`tools.plotting` under their old module path
(``from tools.plot import load_runs, group_runs, ...`` in scripts), and ``python -m tools.plot``."""

from tools.plotting import *  # noqa: F401,F403
from tools.plotting import __all__  # noqa: F401
from tools.plotting import plot_command

if __name__ == "__main__":
    plot_command()
