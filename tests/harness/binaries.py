"""The external programs the media and browser tests drive (ffmpeg, ffprobe, Chromium),
found one way: on PATH (``shutil.which``). A missing program skips the test that needs
it, unless ``TIDECAST_REQUIRE_TOOLS`` is set (``scripts/test`` and CI set it): then it is
a failure that names the Debian package to install."""

from __future__ import annotations

import os
import shutil

import pytest

REQUIRE_ENV = "TIDECAST_REQUIRE_TOOLS"

#: Each program the tests run, and the Debian package that installs it.
DEBIAN_PACKAGES: dict[str, str] = {
    "ffmpeg": "ffmpeg",
    "ffprobe": "ffmpeg",
    "chromium": "chromium",
}


def require(program: str) -> str:
    """The path of `program` on PATH; skips the calling test without it, or fails it when
    TIDECAST_REQUIRE_TOOLS says the tools must be there."""
    path = shutil.which(program)
    if path is not None:
        return path
    package = DEBIAN_PACKAGES[program]
    missing = f"{program} is not on PATH (apt-get install {package}, or run scripts/bootstrap)"
    if os.environ.get(REQUIRE_ENV):
        pytest.fail(f"{missing} and {REQUIRE_ENV} is set", pytrace=False)
    pytest.skip(f"{missing}; set {REQUIRE_ENV}=1 to make this a failure")


@pytest.fixture(scope="session")
def ffmpeg() -> str:
    return require("ffmpeg")


@pytest.fixture(scope="session")
def ffprobe() -> str:
    return require("ffprobe")


@pytest.fixture(scope="session")
def chromium_path() -> str:
    return require("chromium")


#: For test modules that run ffmpeg and ffprobe through helpers rather than fixtures.
needs_ffmpeg = pytest.mark.usefixtures("ffmpeg", "ffprobe")
