"""The content network of neural patch synthesis and its trainer (``holefill train content``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from holefill.errors import InputError, WeightsError
from holefill.methods.neural_patch import load_content, read_content, save_content
from holefill.nn.content import ContentNet, ContentNetConfig, Discriminator, count_parameters
from holefill.train.checkpoint import export_pconv
from holefill.train.cli import main as train_main
from holefill.train.content import (
    ContentMasks,
    centred_rectangle,
    load_content_config,
    main_content,
    masked_l2,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY_MODEL = [
    "model.size=32",
    "model.encoder=[8,16,16]",
    "model.decoder=[16,8]",
    "model.bottleneck=32",
    "model.discriminator=[8,16]",
    "data.size=32",
]


def _tiny_config() -> ContentNetConfig:
    return ContentNetConfig(
        size=32, encoder=[8, 16, 16], decoder=[16, 8], bottleneck=32, discriminator=[8, 16]
    )


@pytest.fixture
def photo_dir(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:48, 0:48]
    for index in range(6):
        base = np.stack([xx * (index + 2), yy * 3, (xx + yy) * 2], axis=2) % 256
        noise = rng.normal(0, 8, base.shape)
        Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8)).save(
            folder / f"p{index}.png"
        )
    return folder


# -- the networks ------------------------------------------------------------------------------


def test_default_network_shapes_and_size_budget():
    net, critic = ContentNet(), Discriminator()
    image, hole = torch.rand(2, 3, 128, 128), torch.zeros(2, 1, 128, 128)
    hole[..., 32:96, 32:96] = 1
    out = net(image, hole)
    assert out.shape == (2, 3, 128, 128) and out.min() >= 0 and out.max() <= 1
    assert critic(out).shape == (2,)
    assert count_parameters(net) * 2 <= 20e6  # float16 weights within 20 MB


def test_network_ignores_hole_pixels():
    net = ContentNet(_tiny_config()).eval()
    image, hole = torch.rand(1, 3, 32, 32), torch.zeros(1, 1, 32, 32)
    hole[..., 8:24, 8:24] = 1
    other = torch.where(hole > 0, torch.rand_like(image), image)
    assert torch.equal(net(image, hole), net(other, hole))


def test_config_checks():
    with pytest.raises(InputError, match="len\\(decoder\\)"):
        ContentNetConfig(encoder=[8, 16], decoder=[8, 8])
    with pytest.raises(InputError, match="multiple"):
        ContentNetConfig(size=100)
    with pytest.raises(InputError, match="unknown content-net config"):
        ContentNetConfig.from_dict({"width": 3})
    with pytest.raises(InputError, match="unknown config key"):
        load_content_config(overrides=["optim.learning_rate=1"])


def test_a_few_steps_lower_the_l2_loss():
    torch.manual_seed(0)
    net = ContentNet(_tiny_config())
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 32), torch.linspace(0, 1, 32), indexing="ij")
    image = torch.stack([xx, yy, (xx + yy) / 2])[None].repeat(4, 1, 1, 1)
    hole = torch.zeros(4, 1, 32, 32)
    hole[..., 8:24, 8:24] = 1
    losses = []
    for _ in range(25):
        loss = masked_l2(net(image, hole), image, hole, known_weight=0.1)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


# -- holes -------------------------------------------------------------------------------------


def test_centred_rectangles_sit_near_the_centre():
    rng = np.random.default_rng(0)
    for _ in range(20):
        hole = centred_rectangle(128, rng, (0.3, 0.55), 0.06)
        rows, cols = np.nonzero(hole)
        assert abs(rows.mean() - 63.5) <= 9 and abs(cols.mean() - 63.5) <= 9
        assert 0.3 * 128 - 1 <= np.ptp(rows) + 1 <= 0.55 * 128 + 1


def test_mask_mix():
    rng = np.random.default_rng(1)
    rectangles = ContentMasks(centre_share=1.0)
    strokes = ContentMasks(centre_share=0.0)
    box = rectangles(64, rng)
    rows, cols = np.nonzero(box)
    assert box.sum() == (np.ptp(rows) + 1) * (np.ptp(cols) + 1)  # a filled rectangle
    shares = [strokes(64, rng).mean() for _ in range(10)]
    assert min(shares) > 0 and max(shares) <= 0.62
    with pytest.raises(InputError):
        ContentMasks(centre_share=2.0)


# -- weights files -----------------------------------------------------------------------------


def test_export_round_trip_and_format_check(tmp_path):
    config = _tiny_config()
    net = ContentNet(config).eval()
    path = save_content(
        net.state_dict(), config, tmp_path / "net.safetensors", metadata={"step": "7"}
    )
    loaded_config, _, header = read_content(path)
    assert loaded_config == config and header["step"] == "7" and header["dtype"] == "float16"
    loaded = load_content(path)
    image, hole = torch.rand(1, 3, 32, 32), torch.zeros(1, 1, 32, 32)
    hole[..., 10:20, 10:20] = 1
    torch.testing.assert_close(loaded(image, hole), net(image, hole), atol=5e-3, rtol=0)
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(1)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(WeightsError, match="not a holefill content-network file"):
        read_content(tmp_path / "other.safetensors")


# -- the trainer -------------------------------------------------------------------------------


def _train(photo_dir, run, *extra):
    return main_content(
        [
            "--data",
            str(photo_dir),
            "--val",
            str(photo_dir),
            "--out",
            str(run),
            "device=cpu",
            *TINY_MODEL,
            "data.batch_size=4",
            "val_images=4",
            "log_every=1",
            "ckpt_every=2",
            "val_every=0",
            "threads=1",
            *extra,
        ]
    )


def test_training_checkpoints_validates_and_exports(photo_dir, tmp_path, capsys):
    run = tmp_path / "run"
    copy = tmp_path / "exported.safetensors"
    assert _train(photo_dir, run, "max_steps=3", "--export", str(copy)) == 0
    assert (run / "config.yaml").is_file() and (run / "checkpoints" / "latest").is_file()
    val_rows = (run / "val.csv").read_text().splitlines()
    assert val_rows[0] == "step,bin,count,psnr,ssim" and any(",centre,2," in r for r in val_rows)
    assert len((run / "train.csv").read_text().splitlines()) == 4  # header + 3 steps
    config, _, header = read_content(copy)
    assert config == _tiny_config() and header["step"] == "3"
    again = tmp_path / "again.safetensors"
    assert main_content(["export", str(run), "-o", str(again), "--dtype", "float32"]) == 0
    assert read_content(again)[2]["dtype"] == "float32"
    # a finished run refuses a fresh start into the same folder
    assert _train(photo_dir, run, "max_steps=3") == 2
    assert "--resume" in capsys.readouterr().err
    # the one trainer's commands: export finds the network a run trained; pconv refuses the run
    generic = tmp_path / "generic.safetensors"
    assert train_main(["export", str(run), "-o", str(generic)]) == 0
    assert read_content(generic)[0] == config
    wrong = ["pconv", "--out", str(run), "--resume", "--device", "cpu", "max_steps=4"]
    assert train_main(wrong) == 2
    assert "holds a content run: resume it with `holefill train content`" in capsys.readouterr().err
    with pytest.raises(WeightsError, match="a content checkpoint, not a pconv one"):
        export_pconv(run, tmp_path / "nope.safetensors")


def test_resume_continues_exactly(photo_dir, tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert _train(photo_dir, straight, "max_steps=4") == 0
    assert _train(photo_dir, split, "max_steps=2") == 0
    assert main_content(["--out", str(split), "--resume", "max_steps=4", "device=cpu"]) == 0
    first = load_content(straight / "model.safetensors").state_dict()
    second = load_content(split / "model.safetensors").state_dict()
    for name, tensor in first.items():
        assert torch.equal(tensor, second[name]), name
