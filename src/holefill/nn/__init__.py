"""Neural-network building blocks of holefill (torch only): partial convolutions, the PConv U-Net,
frozen VGG features and the partial-convolution loss (Liu et al. 2018)."""

from holefill.nn.losses import DEFAULT_VGG19_SCALES, LossWeights, PConvLoss, pconv_loss
from holefill.nn.pconv import PartialConv2d
from holefill.nn.unet import PConvConfig, PConvUNet
from holefill.nn.vgg import VGGFeatures, build_feature_net

__all__ = [
    "DEFAULT_VGG19_SCALES",
    "LossWeights",
    "PConvConfig",
    "PConvLoss",
    "PConvUNet",
    "PartialConv2d",
    "VGGFeatures",
    "build_feature_net",
    "pconv_loss",
]
