"""Training holefill's partial-convolution U-Net: config, data stream, loop, checkpoints, DDP.

Entry points: ``holefill train pconv ...`` (:func:`holefill.train.cli.main`), :func:`train`,
:func:`export_pconv`.
"""

from holefill.train.checkpoint import export_pconv
from holefill.train.config import TrainConfig, load_config
from holefill.train.loop import TrainResult, train

__all__ = ["train", "TrainConfig", "TrainResult", "load_config", "export_pconv"]
