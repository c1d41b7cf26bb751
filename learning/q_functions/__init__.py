"""Twin Q functions on the task-batched networks; mtrl's CARE critic (shared encoder)."""

from learning.q_functions.care_twin_q import CARETwinQFunction, make_twin_q, share_care_parts
from learning.q_functions.twin_q import TwinQFunction

__all__ = ["CARETwinQFunction", "TwinQFunction", "make_twin_q", "share_care_parts"]
