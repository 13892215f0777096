"""The Stable Diffusion architectures as the diffusers checkpoint folder describes them.

An `SDArchitecture` holds the four config dicts of a diffusers checkpoint folder, as they
appear in `unet/config.json`, `vae/config.json`, `text_encoder/config.json` and
`scheduler/scheduler_config.json` (network fields missing there take diffusers' /
transformers' defaults, `DEFAULTS` below; the scheduler config is kept as written, and
schedulers.scheduler_from_config fills it in as diffusers' from_config does). `V1` is SD v1.x (CompVis v1-1 .. v1-5 share it), `V2_BASE` is
SD 2.x-base (512 px, epsilon prediction). `tiny()` is a small architecture of the same kind
for fast tests (the torch side and the reference pipelines accept any size; keras-cv's models
are full size only).

The version is read from the shapes, not trusted from names: v1 conditions on CLIP ViT-L/14
text features (cross_attention_dim 768), v2 on OpenCLIP ViT-H/14 (1024).
"""
from __future__ import annotations

import copy
import dataclasses
from typing import Any

from gan_diffusion.errors import CheckpointError

# diffusers' / transformers' defaults for the fields SD configs may leave out
DEFAULTS: dict[str, dict[str, Any]] = {
    "unet": {"sample_size": 64, "in_channels": 4, "out_channels": 4, "center_input_sample": False,
             "flip_sin_to_cos": True, "freq_shift": 0,
             "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                                  "CrossAttnDownBlock2D", "DownBlock2D"],
             "mid_block_type": "UNetMidBlock2DCrossAttn",
             "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D",
                                "CrossAttnUpBlock2D"],
             "only_cross_attention": False, "block_out_channels": [320, 640, 1280, 1280],
             "layers_per_block": 2, "downsample_padding": 1, "mid_block_scale_factor": 1,
             "act_fn": "silu", "norm_num_groups": 32, "norm_eps": 1e-5,
             "cross_attention_dim": 768, "transformer_layers_per_block": 1,
             "attention_head_dim": 8, "num_attention_heads": None, "dual_cross_attention": False,
             "use_linear_projection": False, "class_embed_type": None, "addition_embed_type": None,
             "num_class_embeds": None, "upcast_attention": False,
             "resnet_time_scale_shift": "default", "time_embedding_type": "positional",
             "conv_in_kernel": 3, "conv_out_kernel": 3, "encoder_hid_dim": None,
             "time_cond_proj_dim": None},
    "vae": {"in_channels": 3, "out_channels": 3,
            "down_block_types": ["DownEncoderBlock2D"] * 4, "up_block_types": ["UpDecoderBlock2D"] * 4,
            "block_out_channels": [128, 256, 512, 512], "layers_per_block": 2, "act_fn": "silu",
            "latent_channels": 4, "norm_num_groups": 32, "sample_size": 512,
            "scaling_factor": 0.18215, "force_upcast": True, "use_quant_conv": True,
            "use_post_quant_conv": True, "mid_block_add_attention": True},
    "text_encoder": {"vocab_size": 49408, "hidden_size": 768, "intermediate_size": 3072,
                     "num_hidden_layers": 12, "num_attention_heads": 12,
                     "max_position_embeddings": 77, "hidden_act": "quick_gelu",
                     "layer_norm_eps": 1e-5, "projection_dim": 768},
    # SD v1-4's scheduler/scheduler_config.json (random weights use it as it is)
    "scheduler": {"_class_name": "PNDMScheduler", "num_train_timesteps": 1000,
                  "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
                  "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1,
                  "clip_sample": False, "trained_betas": None},
}

# Architecture fields this library implements; anything else that changes the maths is refused.
SUPPORTED = {
    "unet": {"down_block_types": {"CrossAttnDownBlock2D", "DownBlock2D"},
             "up_block_types": {"CrossAttnUpBlock2D", "UpBlock2D"},
             "mid_block_type": {"UNetMidBlock2DCrossAttn"}, "act_fn": {"silu"},
             "class_embed_type": {None}, "addition_embed_type": {None}, "num_class_embeds": {None},
             "resnet_time_scale_shift": {"default"}, "time_embedding_type": {"positional"},
             "only_cross_attention": {False}, "dual_cross_attention": {False},
             "transformer_layers_per_block": {1}, "center_input_sample": {False},
             "encoder_hid_dim": {None}, "time_cond_proj_dim": {None}, "num_attention_heads": {None}},
    "vae": {"down_block_types": {"DownEncoderBlock2D"}, "up_block_types": {"UpDecoderBlock2D"},
            "act_fn": {"silu"}, "use_quant_conv": {True}, "use_post_quant_conv": {True},
            "mid_block_add_attention": {True}},
    "text_encoder": {"hidden_act": {"quick_gelu", "gelu"}},
}

COMPONENTS = ("unet", "vae", "text_encoder", "scheduler")


@dataclasses.dataclass(frozen=True)
class SDArchitecture:
    """The four config dicts of one Stable Diffusion checkpoint (defaults filled in)."""

    unet: dict[str, Any]
    vae: dict[str, Any]
    text_encoder: dict[str, Any]
    scheduler: dict[str, Any]

    @classmethod
    def from_dicts(cls, **configs: dict[str, Any]) -> "SDArchitecture":
        """Fill diffusers' defaults in, drop bookkeeping keys ("_diffusers_version", ...),
        and check that this library implements every field that changes the maths.

        Raises:
            CheckpointError: naming the component, field and the supported values.
        """
        out = {}
        for name in COMPONENTS:
            if name == "scheduler" and configs.get(name):
                # kept as written: scheduler_from_config gives absent fields the defaults of
                # the class it builds, as diffusers' from_config does
                out[name] = {k: v for k, v in configs[name].items() if k != "_diffusers_version"}
                continue
            given = {k: v for k, v in (configs.get(name) or {}).items() if not k.startswith("_")}
            if name == "text_encoder":
                given = {k: v for k, v in given.items() if k in DEFAULTS[name]}
            merged = {**copy.deepcopy(DEFAULTS[name]), **given}
            for key, ok in SUPPORTED.get(name, {}).items():
                value = merged[key]
                values = value if isinstance(value, list) else [value]
                bad = [v for v in values if v not in ok]
                if bad:
                    raise CheckpointError(
                        f"{name}/config.json: {key}={value!r} is not supported (this library "
                        f"implements {sorted(map(repr, ok))}); it is not a Stable Diffusion 1.x/2.x "
                        "text-to-image checkpoint")
            out[name] = merged
        return cls(**out)

    @property
    def version(self) -> str:
        """"v1" (CLIP ViT-L text features, 768) or "v2" (OpenCLIP ViT-H, 1024)."""
        dim = self.unet["cross_attention_dim"]
        return {768: "v1", 1024: "v2"}.get(dim, f"custom (cross_attention_dim {dim})")

    @property
    def latent_channels(self) -> int:
        return int(self.vae["latent_channels"])

    @property
    def scaling_factor(self) -> float:
        return float(self.vae["scaling_factor"])

    @property
    def vae_scale_factor(self) -> int:
        """Image pixels per latent pixel: 2 ** (number of VAE blocks - 1) (8 for SD)."""
        return 2 ** (len(self.vae["block_out_channels"]) - 1)

    @property
    def unet_multiple(self) -> int:
        """Latent sizes must be multiples of this for the U-Net's skips to line up."""
        return 2 ** (len(self.unet["block_out_channels"]) - 1)

    @property
    def max_length(self) -> int:
        return int(self.text_encoder["max_position_embeddings"])

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {name: copy.deepcopy(getattr(self, name)) for name in COMPONENTS}


V1 = SDArchitecture.from_dicts()
V2_BASE = SDArchitecture.from_dicts(
    unet={"attention_head_dim": [5, 10, 20, 20], "cross_attention_dim": 1024,
          "use_linear_projection": True, "sample_size": 64},
    vae={"sample_size": 512},
    text_encoder={"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 23,
                  "num_attention_heads": 16, "hidden_act": "gelu", "projection_dim": 512},
    scheduler={**DEFAULTS["scheduler"], "prediction_type": "epsilon"})   # 2-1-base's
ARCHITECTURES = {"sd-v1": V1, "sd-v2": V2_BASE}


def tiny(version: str = "v1") -> SDArchitecture:
    """A small SD-shaped architecture for tests (~1 M parameters; the same block types,
    cross-attention, GroupNorm groups and 77-token text encoder; vocabulary 49408 so the
    stand-in tokenizer's ids fit)."""
    cross = 32 if version == "v1" else 48
    return SDArchitecture.from_dicts(
        unet={"block_out_channels": [32, 64], "layers_per_block": 1, "norm_num_groups": 8,
              "cross_attention_dim": cross, "sample_size": 8,
              "attention_head_dim": 4 if version == "v1" else [2, 4],   # v2: heads per block
              "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
              "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
              "use_linear_projection": version != "v1"},
        vae={"block_out_channels": [16, 32], "layers_per_block": 1, "norm_num_groups": 8,
             "down_block_types": ["DownEncoderBlock2D"] * 2,
             "up_block_types": ["UpDecoderBlock2D"] * 2, "sample_size": 32},
        text_encoder={"hidden_size": cross, "intermediate_size": 4 * cross,
                      "num_hidden_layers": 2, "num_attention_heads": 4, "projection_dim": cross,
                      "hidden_act": "quick_gelu" if version == "v1" else "gelu"})
