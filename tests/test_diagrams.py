"""The per-lab network diagrams: drawn from settings, checked on construction."""

import pytest

from utils.lab.diagrams import Changes, _color, _rows, draw_model
from utils.train.params import ALL_LINEAR


def test_rows_show_the_first_and_last_blocks_and_the_gap():
    labels = [label for label, _ in _rows(Changes(layers=30))]
    assert labels[:4] == ["input tokens", "embeddings", "block 0", "block 1"]
    assert "... blocks 2-26 ..." in labels and labels[-2:] == ["final norm", "head"]
    assert [label for label, _ in _rows(Changes(layers=2))][2:4] == ["block 0", "block 1"]


def test_colours_follow_what_trains():
    lab02 = Changes(layers=30, trained_blocks=1, norm=True, head="new")
    assert _color("block 29", lab02) != _color("block 28", lab02)
    assert _color("norm", lab02) == _color("block 29", lab02) != _color("head", lab02)
    assert _color("embeddings", Changes(layers=30, embeddings=True)) == _color("block 29", lab02)


def test_each_labs_picture_is_drawn(tmp_path):
    for i, changes in enumerate(
        (
            Changes(layers=30, prompt=True),
            Changes(layers=30, lora=ALL_LINEAR, four_bit=True),
            Changes(layers=30, lora=ALL_LINEAR, embeddings=True, head="trained"),
        )
    ):
        path = draw_model(changes, tmp_path / f"{i}.png", "title")
        assert path.read_bytes()[:4] == b"\x89PNG"


def test_impossible_settings_are_refused():
    with pytest.raises(ValueError, match="trained_blocks"):
        Changes(layers=2, trained_blocks=3)
    with pytest.raises(ValueError, match="head"):
        Changes(layers=2, head="bigger")
