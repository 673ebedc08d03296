"""scalelab: experiments on how ConvNets should be scaled (depth, width, resolution, compound)."""

__version__ = "0.1.0"
