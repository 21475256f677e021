"""holefill.weights: devices, checksums, the weights-file format, the network cache, VGG files."""

from __future__ import annotations

import hashlib
import os

import pytest
import torch

from holefill import weights
from holefill.errors import InputError, WeightsError
from holefill.methods.pconv import load_pconv, read_pconv, save_pconv
from holefill.nn.unet import PConvConfig, PConvUNet

CONFIG = PConvConfig(layers=3, width=0.25, max_channels=64)


@pytest.fixture
def weights_file(tmp_path):
    torch.manual_seed(0)
    return save_pconv(PConvUNet(CONFIG).state_dict(), CONFIG, tmp_path / "net.safetensors")


# -- devices -----------------------------------------------------------------------------------


def test_resolve_device_names_and_errors():
    assert weights.resolve_device("cpu") == torch.device("cpu")
    assert weights.resolve_device(" CPU ") == torch.device("cpu")
    assert weights.resolve_device(torch.device("cpu")) == torch.device("cpu")
    expected_auto = "cuda" if torch.cuda.is_available() else "cpu"
    assert weights.resolve_device("auto").type == expected_auto
    for junk in ("gpu", "cuda:x", "cuda1", ""):
        with pytest.raises(InputError, match="unknown device"):
            weights.resolve_device(junk)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without a GPU")
def test_cuda_without_a_gpu_is_a_clear_error():
    for request in ("cuda", "cuda:0", "cuda:1"):
        with pytest.raises(InputError, match="no CUDA GPU is available"):
            weights.resolve_device(request)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_indices_are_checked_against_the_machine():
    count = torch.cuda.device_count()
    assert weights.resolve_device("cuda") == torch.device("cuda", 0)
    assert weights.resolve_device("cuda", local_rank=count + 1) == torch.device("cuda", 1 % count)
    with pytest.raises(InputError, match=f"has {count} CUDA GPU"):
        weights.resolve_device(f"cuda:{count}")


def test_one_device_choice_everywhere():
    """The trainer's DDP setup and every method use the one resolve_device."""
    from holefill.methods import neural_patch, pconv
    from holefill.train import distributed

    assert distributed.resolve_device is pconv.resolve_device is neural_patch.resolve_device
    assert distributed.resolve_device is weights.resolve_device


# -- checksums ---------------------------------------------------------------------------------


def test_file_sha256_and_verify(tmp_path):
    path = tmp_path / "blob.bin"
    data = os.urandom(3 << 20)  # three 1 MiB chunks and no remainder
    path.write_bytes(data + b"tail")
    digest = hashlib.sha256(data + b"tail").hexdigest()
    assert weights.file_sha256(path) == digest
    assert weights.verify_file(path, digest) == path
    assert weights.verify_file(path, digest[:8].upper()) == path  # a prefix, any case
    with pytest.raises(WeightsError, match="corrupt or not the published one"):
        weights.verify_file(path, "0" * 8 if not digest.startswith("0") else "1" * 8)
    with pytest.raises(WeightsError, match="not found"):
        weights.verify_file(tmp_path / "absent.bin", digest)
    assert weights.name_hash_prefix(tmp_path / "vgg19-dcbb9e9d.pth") == "dcbb9e9d"
    assert weights.name_hash_prefix(tmp_path / "vgg19_to_relu4_1.pth") is None


def test_weights_digest_covers_names_dtypes_shapes_and_values():
    base = {"a": torch.arange(6, dtype=torch.float32).view(2, 3), "b": torch.ones(2)}
    digest = weights.weights_digest(base)
    assert digest == weights.weights_digest(dict(reversed(base.items())))  # name order
    variants = [
        {**base, "a": base["a"].view(3, 2)},
        {**base, "a": base["a"].double()},
        {**base, "c": base["b"]},
        {"a2": base["a"], "b": base["b"]},
        {**base, "b": torch.tensor([1.0, 1.0 + 2**-20])},
    ]
    assert len({digest, *(weights.weights_digest(v) for v in variants)}) == len(variants) + 1


def test_a_damaged_tensor_fails_the_header_checksum(weights_file, tmp_path):
    _, tensors, header = read_pconv(weights_file)
    raw = bytearray(weights_file.read_bytes())
    raw[-3] ^= 0xFF  # a byte of the last tensor's data (the header is at the start)
    damaged = tmp_path / "damaged.safetensors"
    damaged.write_bytes(bytes(raw))
    with pytest.raises(WeightsError, match="do not match the header's weights_sha256"):
        load_pconv(damaged)
    assert header["weights_sha256"] == weights.weights_digest(tensors)


def test_one_weights_format_for_both_networks(tmp_path):
    """The PConv and content-network files are the same format, told apart by their header."""
    from holefill.methods.neural_patch import read_content
    from holefill.nn.content import ContentNet, ContentNetConfig

    config = ContentNetConfig(
        size=32, encoder=[8, 16, 16], decoder=[16, 8], bottleneck=32, discriminator=[8, 16]
    )
    path = weights.write_weights(
        ContentNet(config).state_dict(), config, tmp_path / "c.safetensors", "holefill-content"
    )
    assert read_content(path)[0] == config
    with pytest.raises(WeightsError, match="not a holefill PConv weights file"):
        read_pconv(path)
    with pytest.raises(InputError, match="unknown export dtype"):
        weights.write_weights({}, config, tmp_path / "x.safetensors", "f", dtype="int8")


# -- the cache ---------------------------------------------------------------------------------


def test_cache_shares_networks_and_reloads_a_rewritten_file(weights_file):
    cpu = torch.device("cpu")
    builds = []

    def build():
        builds.append(1)
        return load_pconv(weights_file)

    first = weights.cached_network("pconv", weights_file, cpu, build)
    assert weights.cached_network("pconv", weights_file, cpu, build) is first
    assert weights.cached_network("pconv", weights_file, cpu, build, "other option") is not first
    assert len(builds) == 2
    torch.manual_seed(1)  # rewrite the file with other weights: loaded again
    save_pconv(PConvUNet(CONFIG).state_dict(), CONFIG, weights_file)
    os.utime(weights_file, ns=(1, 1))  # a different modification time even on coarse clocks
    second = weights.cached_network("pconv", weights_file, cpu, build)
    assert second is not first and len(builds) == 3


def test_cache_keeps_the_most_recently_used(weights_file):
    cpu = torch.device("cpu")
    weights.clear_cache()
    kept = weights.cached_network("pconv", weights_file, cpu, lambda: torch.nn.Linear(1, 1), 0)
    for index in range(1, weights.CACHE_SIZE + 3):
        weights.cached_network("pconv", weights_file, cpu, lambda: torch.nn.Linear(1, 1), index)
        weights.cached_network("pconv", weights_file, cpu, lambda: None, 0)  # used again
    assert weights.cached_network("pconv", weights_file, cpu, lambda: None, 0) is kept
    evicted = weights.cached_network("pconv", weights_file, cpu, lambda: "rebuilt", 1)
    assert evicted == "rebuilt"
    with pytest.raises(WeightsError, match="not found"):
        weights.cached_network("pconv", weights_file.with_name("absent"), cpu, lambda: None)
    weights.clear_cache()


def test_inpainters_share_the_one_cache(weights_file):
    """Two PConv inpainters on one file get one network, from holefill.weights' cache."""
    import holefill

    weights.clear_cache()
    first = holefill.create_inpainter("pconv", weights=str(weights_file))
    second = holefill.create_inpainter("pconv", weights=str(weights_file), margin=8)
    assert first.net is second.net
    assert first.net in weights._NETWORKS.values()


def test_a_damaged_packaged_file_is_refused(tmp_path, monkeypatch, weights_file):
    """A file shipped in the package must have the sha256 of its provenance note."""
    import holefill.paths

    monkeypatch.setattr(holefill.paths, "package_weights_dir", lambda: tmp_path)
    shipped = tmp_path / "pconv_default.safetensors"
    shipped.write_bytes(weights_file.read_bytes())
    note = f"| file sha256 | `{weights.file_sha256(shipped)}` |\n"
    shipped.with_suffix(".md").write_text(note)
    cpu = torch.device("cpu")
    weights.clear_cache()
    assert weights.cached_network("pconv", shipped, cpu, lambda: load_pconv(shipped)) is not None
    weights.clear_cache()
    shipped.with_suffix(".md").write_text(note.replace(note[17:25], "00000000"))
    with pytest.raises(WeightsError, match="reinstall holefill"):
        weights.cached_network("pconv", shipped, cpu, lambda: load_pconv(shipped))


# -- VGG files ---------------------------------------------------------------------------------


def test_no_vgg_file_is_one_line_and_downloads_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv("HOLEFILL_VGG_WEIGHTS", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    calls = []
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda *a, **k: calls.append(a))
    with pytest.raises(WeightsError) as info:
        weights.vgg19_file(download_hint="--download-vgg")
    message = str(info.value)
    assert "\n" not in message and calls == []
    for part in ("needs a VGG-19 file", "--vgg-weights PATH", "HOLEFILL_VGG_WEIGHTS", "548 MB"):
        assert part in message
    assert message.endswith("with --download-vgg")
    monkeypatch.setenv("HOLEFILL_VGG_WEIGHTS", str(tmp_path / "typo.pth"))
    with pytest.raises(WeightsError, match="typo.pth: VGG weights file not found .*HOLEFILL"):
        weights.vgg19_file()


def test_vgg_file_order_explicit_environment_hub(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    hub = tmp_path / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth"
    hub.parent.mkdir(parents=True)
    hub.write_bytes(b"published")
    mine, env = tmp_path / "mine.pth", tmp_path / "env.pth"
    mine.write_bytes(b"x")
    env.write_bytes(b"y")
    monkeypatch.setenv("HOLEFILL_VGG_WEIGHTS", str(env))
    assert weights.vgg19_file(mine) == mine
    assert weights.vgg19_file() == env
    monkeypatch.delenv("HOLEFILL_VGG_WEIGHTS")
    assert weights.vgg19_file() == hub  # already downloaded once: no permission needed


def test_no_clone_paths_in_the_package():
    """Library code never reads the repository's ../shared folder."""
    from pathlib import Path

    import holefill

    package = Path(holefill.__file__).parent
    sources = [*package.rglob("*.py"), *package.rglob("*.yaml")]
    offenders = [
        str(path.relative_to(package))
        for path in sources
        if "../shared" in path.read_text() or "shared_dir" in path.read_text()
    ]
    assert offenders == []
