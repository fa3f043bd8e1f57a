"""Imports every model so the metadata is complete (Alembic autogenerate, checks)."""

from control_plane.auth.models import ApiToken, Membership, RefreshToken, User
from control_plane.db.base import Base
from control_plane.edges.models import Cluster, EnrollmentToken, Node
from control_plane.streams.models import Stream
from control_plane.tenants.models import Tenant

__all__ = [
    "ApiToken",
    "Base",
    "Cluster",
    "EnrollmentToken",
    "Membership",
    "Node",
    "RefreshToken",
    "Stream",
    "Tenant",
    "User",
]
