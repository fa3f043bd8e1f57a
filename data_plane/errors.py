"""The data plane's error base. Every error the data plane raises on purpose derives from
`DataPlaneError`, and each is defined once, beside the code that raises it:

    DataPlaneError
    +-- BusError                   bus/base.py: the bus could not take or give messages
    +-- WarehouseError             warehouse/base.py: a statement refused, or no warehouse
    |   +-- BatchRefusedError      warehouse/engine_decoding.py: the engine cannot read a batch
    +-- DirectoryUnavailableError  directory/client.py: the control plane could not be asked
    +-- CredentialRefusedError     directory/client.py: the control plane refused a credential
    +-- WorkerUnavailableError     worker_processes.py: a worker process died
    +-- InvalidRangeError          analytics/time_range.py: a query's time range is invalid

The edges translate them once: the ingress into gRPC status codes, the HTTP API into
error responses; the ingest retries the transient ones.
"""

from __future__ import annotations


class DataPlaneError(Exception):
    """Something the data plane expects may fail did."""
