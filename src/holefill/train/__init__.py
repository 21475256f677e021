"""Training holefill's networks: one loop, two plug-ins (PConv U-Net, content network).

Entry points: ``holefill train pconv|content|export ...`` (:func:`holefill.train.cli.main`),
:func:`train` (either network, chosen by the configuration's type), :func:`export_pconv`.
Modules: ``config`` (the configuration trees and their YAML / ``key=value`` mechanism), ``data``
(the resumable sample stream), ``loop`` (the loop), ``pconv`` and ``content`` (the plug-ins),
``checkpoint``, ``distributed``.
"""

from holefill.train.checkpoint import export_pconv
from holefill.train.config import ContentTrainConfig, TrainConfig, load_config
from holefill.train.loop import TrainResult, train

__all__ = [
    "train",
    "TrainConfig",
    "ContentTrainConfig",
    "TrainResult",
    "load_config",
    "export_pconv",
]
