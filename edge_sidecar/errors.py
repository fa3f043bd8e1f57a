"""The edge sidecar's errors.

EdgeSidecarError
 +-- ControlUnavailableError   the control plane could not be reached or timed out
 +-- CredentialRejectedError   the control or data plane refused our credential or enrollment token
 +-- IngressUnavailableError   the data plane's event ingress could not take a batch
"""

from __future__ import annotations


class EdgeSidecarError(Exception):
    pass


class ControlUnavailableError(EdgeSidecarError):
    pass


class CredentialRejectedError(EdgeSidecarError):
    pass


class IngressUnavailableError(EdgeSidecarError):
    def __init__(self, message: str, *, too_large: bool = False) -> None:
        super().__init__(message)
        #: The ingress refused the batch for its size: send fewer events at a time.
        self.too_large = too_large
