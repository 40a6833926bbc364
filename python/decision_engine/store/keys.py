"""Redis key names of one deployment (everything under `key_prefix`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Keys"]


@dataclass(frozen=True)
class Keys:
    prefix: str

    def version(self, profile: str) -> str:
        """INCR'd whenever the profile's shared history changes (optimistic check)."""
        return f"{self.prefix}:v:{profile}"

    def history(self, profile: str) -> str:
        """Sorted set of the profile's contact events (JSON) scored by time."""
        return f"{self.prefix}:h:{profile}"

    def budget(self, offer: str, window: float, now: float) -> str:
        """Units of an offer's budget used in the window containing `now`."""
        return f"{self.prefix}:b:{offer}:{math.floor(now / window)}"

    def pending(self, decision_id: int) -> str:
        """Hash of a decision awaiting outcomes (expires after the attribution window)."""
        return f"{self.prefix}:p:{decision_id}"

    def inbox(self, server: int) -> str:
        """List of outcomes and releases other servers received for this server's decisions."""
        return f"{self.prefix}:inbox:{server}"

    @property
    def deltas(self) -> str:
        """Stream of policy-statistic increments, one entry per flush of one server."""
        return f"{self.prefix}:deltas"

    @property
    def servers(self) -> str:
        """Counter handing out server numbers (the top bits of decision ids)."""
        return f"{self.prefix}:servers"
