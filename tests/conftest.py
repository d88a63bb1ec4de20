"""Shared fixtures: the embedded tokenizer (from the model cache) and a tiny random Llama."""

import pytest

from utils.runtime.models import build_tiny_model, load_embedded_tokenizer


@pytest.fixture(scope="session")
def tokenizer():
    return load_embedded_tokenizer()


@pytest.fixture(scope="session")
def tiny_model(tokenizer):
    return build_tiny_model(tokenizer, num_layers=2, hidden_size=64, seed=0)
