"""TensorFlow/Keras backend. Module names mirror gan_diffusion/torch_backend/ one to one."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from gan_diffusion.tf_backend import runtime  # noqa: E402,F401  (imports tensorflow and keras)

NAME = "tf"
