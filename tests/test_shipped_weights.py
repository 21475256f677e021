"""Every weights file in the package is the one its provenance note describes."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from holefill.methods.neural_patch import load_content, read_content
from holefill.methods.pconv import load_pconv, read_pconv, weights_digest

FOLDER = Path(__import__("holefill").__file__).parent / "weights"
# file name prefix -> (header reader, network loader, size budget of its issue in bytes)
KINDS = {
    "content": (read_content, load_content, 20_000_000),
    "pconv": (read_pconv, load_pconv, 25_000_000),
}
SHIPPED = sorted(FOLDER.glob("*.safetensors"))


def test_the_package_ships_the_content_network():
    assert FOLDER / "content_default.safetensors" in SHIPPED


@pytest.mark.parametrize("path", SHIPPED, ids=lambda path: path.name)
def test_shipped_weights_match_their_provenance_note(path):
    """File hash, header hash of the tensors (recomputed here from the tensors themselves), the
    size budget, and a network that loads with every tensor in place."""
    reader, loader, budget = KINDS[path.name.split("_")[0]]
    note = path.with_suffix(".md").read_text()
    file_hash = re.search(r"file sha256 \| `([0-9a-f]{64})`", note).group(1)
    header_hash = re.search(r"header `weights_sha256` \| `([0-9a-f]{64})`", note).group(1)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == file_hash
    _, tensors, header = reader(path)
    assert header["weights_sha256"] == header_hash == weights_digest(tensors)
    assert path.stat().st_size <= budget
    net = loader(path)  # parameters and batch-norm buffers all found a place
    assert sum(t.numel() for t in net.state_dict().values()) == sum(
        t.numel() for t in tensors.values()
    )
