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


def test_mode_settings_lists_each_switch_of_the_chapter_sources(tmp_path):
    from cra.runmode import mode_settings

    (tmp_path / "a.md").write_text("from cra.runmode import is_fast\nN = 10 if is_fast() else 1000  # size\nx = 1\n")
    (tmp_path / "b.md").write_text("if not is_fast():\n    SEEDS = [0, 1]\n    EPOCHS = 4\nprint(SEEDS)\n")
    (tmp_path / "c.md").write_text("nothing here\n")
    assert mode_settings(tmp_path) == [
        {"chapter": "a", "setting": "N = 10 if is_fast() else 1000"},
        {"chapter": "b", "setting": "if not is_fast(): SEEDS = [0, 1]; EPOCHS = 4"},
    ]
