"""Stable Diffusion's networks in PyTorch: diffusers' UNet2DConditionModel and AutoencoderKL,
transformers' CLIPTextModel, behind the NumPy, channels-last component calls of
gan_diffusion/sd (the TensorFlow twin, tf_backend/stable_diffusion.py, runs keras-cv's models).

The canonical weights are the checkpoint's own state dicts, so loading them is
`load_state_dict` after stripping the component prefix (and transformers 5's missing
"text_model." level). The models are built on the meta device and take the weight arrays
with `assign=True`: nothing is initialised only to be overwritten, and float32 weights share
memory with the NumPy arrays they came from (a 1 B-parameter set is held once).
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from gan_diffusion.errors import ConfigError
from gan_diffusion.families.stable_diffusion import StableDiffusionModel
from gan_diffusion.sd.architectures import SDArchitecture
from gan_diffusion.sd.checkpoint import load_weights
from gan_diffusion.sd.config import SDConfig

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def _init_kwargs(config: dict) -> dict:
    return {k: v for k, v in config.items() if not k.startswith("_")}


def check_dtype(dtype: str, device: str = "cpu") -> torch.dtype:
    """The torch dtype `dtype` names, after a probe convolution and attention on `device`.

    Raises:
        ConfigError: naming the dtype, the device and the dtypes that work.
    """
    if dtype not in DTYPES:
        raise ConfigError(f"dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    t = DTYPES[dtype]
    try:
        x = torch.ones(1, 8, 8, 8, dtype=t, device=device)
        torch.nn.functional.conv2d(x, torch.ones(8, 8, 3, 3, dtype=t, device=device), padding=1)
        torch.nn.functional.group_norm(x, 4)
        q = x.flatten(2).transpose(1, 2)
        torch.nn.functional.scaled_dot_product_attention(q, q, q)
    except (RuntimeError, NotImplementedError) as exc:
        raise ConfigError(f"dtype {dtype} does not run on torch's {device} here ({str(exc)[:120]}); "
                          "use float32 or bfloat16") from None
    return t


class TorchSDComponents:
    """The text encoder, U-Net and VAE of one Stable Diffusion weight set, NumPy in and out.

    Args:
        arch: the architecture (config dicts) of the weights.
        weights: canonical weights {"unet/...": array, "vae/...", "text_encoder/..."}.
        dtype: "float32", "bfloat16" or "float16" for the networks (inputs and outputs stay
            float32 NumPy).
        compile: wrap the U-Net in torch.compile (the benchmark measures both).
        device: "cpu" (or "cuda" where there is one).

    Example:
        >>> comps = TorchSDComponents(V1, random_weights(V1, 0))
        >>> eps = comps.unet(latents, np.array([999]), comps.encode_text(ids))
    """

    def __init__(self, arch: SDArchitecture, weights: Mapping[str, np.ndarray],
                 dtype: str = "float32", compile: bool = False, device: str = "cpu"):
        from diffusers import AutoencoderKL, UNet2DConditionModel
        from transformers import CLIPTextConfig, CLIPTextModel

        self.arch, self.device, self.dtype_name = arch, device, dtype
        self.dtype = check_dtype(dtype, device)
        text_cfg = CLIPTextConfig(**_init_kwargs(arch.text_encoder))
        with torch.device("meta"):
            self.models = {"unet": UNet2DConditionModel(**_init_kwargs(arch.unet)),
                           "vae": AutoencoderKL(**_init_kwargs(arch.vae)),
                           "text_encoder": CLIPTextModel(text_cfg)}
        self.set_weights(weights)
        for m in self.models.values():
            m.eval().requires_grad_(False)
        self._unet = torch.compile(self.models["unet"]) if compile else self.models["unet"]

    # -- weights ----------------------------------------------------------------------------
    @staticmethod
    def _local(component: str, key: str) -> str:
        """Canonical key -> the torch module's state-dict key."""
        key = key.split("/", 1)[1]
        return key.removeprefix("text_model.") if component == "text_encoder" else key

    def set_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        """Load canonical weights (every key of every component; float32 arrays are shared,
        not copied)."""
        for name, model in self.models.items():
            state = {self._local(name, k): torch.from_numpy(np.asarray(v))
                     for k, v in weights.items() if k.startswith(name + "/")}
            state = {k: v.to(self.device, self.dtype) for k, v in state.items()}
            model.load_state_dict(state, strict=True, assign=True)
        text = self.models["text_encoder"]
        n = self.arch.max_length   # a non-persistent buffer: rebuilt, never in a checkpoint
        text.embeddings.register_buffer("position_ids", torch.arange(n, device=self.device)[None],
                                        persistent=False)

    def get_weights(self) -> dict[str, np.ndarray]:
        """Canonical float32 weights (read-only views of the float32 parameters)."""
        out = {}
        for name, model in self.models.items():
            for key, value in model.state_dict().items():
                prefix = "text_model." if name == "text_encoder" else ""
                array = value.detach().to("cpu", torch.float32).numpy()
                array.flags.writeable = False
                out[f"{name}/{prefix}{key}"] = array
        return out

    # -- the four calls ---------------------------------------------------------------------
    def _in(self, x: np.ndarray, channels_last: bool = True) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(x, np.float32))
        if channels_last:
            t = t.permute(0, 3, 1, 2)
        return t.to(self.device, self.dtype)

    @staticmethod
    def _out(t: torch.Tensor, channels_last: bool = True) -> np.ndarray:
        if channels_last:
            t = t.permute(0, 2, 3, 1)
        return t.to("cpu", torch.float32).contiguous().numpy()

    @torch.inference_mode()
    def encode_text(self, ids: np.ndarray) -> np.ndarray:
        """Token ids (B, 77) -> the last hidden states (B, 77, D) (after the final LayerNorm)."""
        ids = torch.as_tensor(np.asarray(ids, np.int64), device=self.device)
        return self._out(self.models["text_encoder"](ids).last_hidden_state, channels_last=False)

    @torch.inference_mode()
    def unet(self, latents: np.ndarray, t: np.ndarray, context: np.ndarray) -> np.ndarray:
        """eps (B, h, w, 4) for latents (B, h, w, 4) at timesteps t (B,) (int, or float for
        Euler's interpolated timesteps) given context (B, 77, D)."""
        ctx = self._in(context, channels_last=False)
        t = np.asarray(t)
        ts = torch.as_tensor(t.astype(np.int64 if t.dtype.kind in "iu" else np.float32), device=self.device)
        return self._out(self._unet(self._in(latents), ts, encoder_hidden_states=ctx).sample)

    @torch.inference_mode()
    def vae_encode(self, images: np.ndarray) -> np.ndarray:
        """Images (B, H, W, 3) in [-1, 1] -> moments (B, H/8, W/8, 8) = [mean | logvar]."""
        return self._out(self.models["vae"].encode(self._in(images)).latent_dist.parameters)

    @torch.inference_mode()
    def vae_decode(self, latents: np.ndarray) -> np.ndarray:
        """Unscaled latents (B, h, w, 4) -> images (B, 8h, 8w, 3), about [-1, 1]."""
        return self._out(self.models["vae"].decode(self._in(latents)).sample)

    def nbytes(self) -> int:
        return sum(p.numel() * p.element_size() for m in self.models.values() for p in m.parameters())


class TorchStableDiffusion(StableDiffusionModel):
    backend_name = "torch"


def build(config: SDConfig) -> TorchStableDiffusion:
    """Read the config's weight set and build it on diffusers' and transformers' models."""
    weight_set = load_weights(config.weights, config.model, config.tokenizer or None)
    if config.device != "cpu" and not torch.cuda.is_available():
        raise ConfigError(f"device {config.device!r}: torch sees no CUDA GPU here (torch "
                          f"{torch.__version__}); use device cpu")
    components = TorchSDComponents(weight_set.arch, weight_set.weights, dtype=config.dtype,
                                   compile=config.jit_compile, device=config.device)
    return TorchStableDiffusion(config, weight_set, components)
