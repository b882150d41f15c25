import pytest

from cra.runmode import MODE_ENV, book_mode, is_fast


def test_default_is_fast(monkeypatch):
    monkeypatch.delenv(MODE_ENV, raising=False)
    assert book_mode() == "fast" and is_fast()


def test_full_mode(monkeypatch):
    monkeypatch.setenv(MODE_ENV, "FULL")
    assert book_mode() == "full" and not is_fast()


def test_unknown_mode_is_an_error(monkeypatch):
    monkeypatch.setenv(MODE_ENV, "quick")
    with pytest.raises(ValueError, match="quick"):
        book_mode()
