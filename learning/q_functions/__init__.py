"""Twin Q functions on the task-batched networks."""

from learning.q_functions.twin_q import TwinQFunction

__all__ = ["TwinQFunction"]
