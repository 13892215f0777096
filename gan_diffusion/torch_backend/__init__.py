"""PyTorch backend. Module names mirror gan_diffusion/tf_backend/ one to one."""
from gan_diffusion.torch_backend import runtime  # noqa: F401  (imports torch)

NAME = "torch"
