"""The control plane's domain errors. The API layers map them to HTTP and gRPC statuses.

ControlPlaneError
 +-- NotFoundError          the resource does not exist *for this caller* (also used to
 |                          hide other tenants' resources: never 403 across tenants)
 +-- ConflictError          a uniqueness or state rule would break
 +-- AuthenticationError    no, malformed, expired or revoked credentials
 +-- PermissionDeniedError  authenticated but lacking the scope or role
 +-- InvalidRequestError    well-formed but unacceptable input
 +-- TooManyRequestsError   throttled: try again after `retry_after_s`
"""

from __future__ import annotations


class ControlPlaneError(Exception):
    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFoundError(ControlPlaneError):
    code = "not_found"


class ConflictError(ControlPlaneError):
    code = "conflict"


class AuthenticationError(ControlPlaneError):
    code = "unauthenticated"


class PermissionDeniedError(ControlPlaneError):
    code = "permission_denied"


class InvalidRequestError(ControlPlaneError):
    code = "invalid_request"


class TooManyRequestsError(ControlPlaneError):
    code = "too_many_requests"

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
