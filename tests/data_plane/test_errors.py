"""The data plane's errors: one base, one class per name."""

from __future__ import annotations

import importlib
import pkgutil

import data_plane
from data_plane.errors import DataPlaneError


def test_every_data_plane_error_derives_from_the_base_and_is_defined_once() -> None:
    defined: dict[str, str] = {}
    for info in pkgutil.walk_packages(data_plane.__path__, "data_plane."):
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if not (isinstance(value, type) and issubclass(value, BaseException)):
                continue
            if value.__module__ != module.__name__:
                continue
            assert issubclass(value, DataPlaneError), f"{module.__name__}.{name}"
            assert defined.setdefault(name, module.__name__) == module.__name__, name
    assert len(defined) >= 8
