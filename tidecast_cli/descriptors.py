"""The process's descriptor limit, raised at start to what the OS allows.

Every connection of every service in the process holds a descriptor; distributions ship a
soft limit of 1,024 under a much higher hard limit, which would cap a whole node at about
a thousand viewers. Raising the soft limit to the hard one needs no privilege.
"""

from __future__ import annotations

import logging
import resource

__all__ = ["raise_descriptor_limit"]

logger = logging.getLogger(__name__)


def raise_descriptor_limit() -> int:
    """Raises RLIMIT_NOFILE's soft limit to its hard limit; returns the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft == hard:
        # An infinite hard limit cannot be a soft one on Linux (EPERM past nr_open).
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as exc:
        logger.warning("descriptor limit stays at %d (hard %d): %s", soft, hard, exc)
        return soft
    return hard
