"""What the CLI prints for people: stored names cannot drive the terminal."""

from __future__ import annotations

import pytest

from tidecast_cli.output import emit


def test_control_characters_in_values_are_printed_as_escapes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    emit([{"id": "1", "name": "bell\x07\x1b[2J\u202e"}], as_json=False, fields=["id", "name"])
    emit({"name": "nul\x00"}, as_json=False)
    shown = capsys.readouterr().out
    assert "\x07" not in shown and "\x1b" not in shown and "\u202e" not in shown
    assert "\x00" not in shown
    assert "bell\\x07\\x1b[2J\\u202e" in shown and "nul\\x00" in shown
    emit([{"name": "Café 東京 \U0001f468\u200d\U0001f469"}], as_json=False)
    assert "Café 東京 \U0001f468\u200d\U0001f469" in capsys.readouterr().out
