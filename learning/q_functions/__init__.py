"""Twin Q functions on the task-batched networks; mtrl's CARE critic (shared encoder)."""

from learning.q_functions.care_twin_q import CARETwinQFunction, make_twin_q, share_care_parts
from learning.q_functions.sm_twin_q import SMTwinQFunction, share_sm_parts
from learning.q_functions.twin_q import TwinQFunction

__all__ = ["CARETwinQFunction", "SMTwinQFunction", "TwinQFunction", "make_twin_q", "share_care_parts",
           "share_sm_parts"]
