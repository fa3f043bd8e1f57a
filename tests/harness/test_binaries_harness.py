"""The one rule for the programs tests drive: found on PATH, and missing means a skip, or
a failure naming the Debian package when TIDECAST_REQUIRE_TOOLS is set."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness import binaries


def test_a_program_on_path_is_found_there(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    program = tmp_path / "ffprobe"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert binaries.require("ffprobe") == str(program)


@pytest.mark.parametrize("program", sorted(binaries.DEBIAN_PACKAGES))
def test_a_missing_program_skips_unless_the_tools_are_required(
    program: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv(binaries.REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match=binaries.REQUIRE_ENV):
        binaries.require(program)
    monkeypatch.setenv(binaries.REQUIRE_ENV, "1")
    package = binaries.DEBIAN_PACKAGES[program]
    with pytest.raises(pytest.fail.Exception, match=f"apt-get install {package}\\b"):
        binaries.require(program)
