"""The edge sidecar's errors.

EdgeSidecarError
 +-- ControlUnavailableError   the control plane could not be reached or timed out
 +-- CredentialRejectedError   the control plane refused our credential or enrollment token
"""

from __future__ import annotations


class EdgeSidecarError(Exception):
    pass


class ControlUnavailableError(EdgeSidecarError):
    pass


class CredentialRejectedError(EdgeSidecarError):
    pass
