"""Stable Diffusion v1 on keras-cv's own models (TensorFlow/Keras), NumPy in and out.

`TFSDComponents` holds keras-cv 0.9's `TextEncoder`, `DiffusionModel`, `ImageEncoder` and
`Decoder` (built with download_weights=False: nothing is ever downloaded), loads canonical
weights into them through gan_diffusion/sd/keras_cv_layout.py (transposes only, bit-exact
both ways), and exposes the components interface of gan_diffusion/sd/__init__.py:

    encode_text(ids (B, 77) int)                    -> context (B, 77, 768) float32
    unet(latents (B, h, w, 4), t (B,) int, context) -> eps (B, h, w, 4)
    vae_encode(images (B, H, W, 3) in [-1, 1])      -> moments (B, H/8, W/8, 8) = [mean | logvar]
    vae_decode(latents (B, h, w, 4), unscaled)      -> images (B, 8h, 8w, 3), about [-1, 1]
    get_weights() / set_weights(weights)               canonical weights dict

Deviations from keras-cv's defaults, each needed to compute the published (diffusers /
CompVis) model; the keras-cv model objects are changed in place, so keras-cv's own
`StableDiffusion.generate_image` driven with them (attributes `text_encoder`,
`diffusion_model`, `image_encoder`, `decoder`) computes the published model too:

1. Normalisation epsilons. keras-cv uses 1e-5 everywhere; diffusers' AutoencoderKL uses
   GroupNorm eps 1e-6 everywhere and the U-Net's Transformer2D GroupNorm 1e-6 (its resnets,
   LayerNorms and conv_norm_out keep 1e-5). The built layers get the published epsilon
   (`keras_cv_layout.EPSILONS`).
2. GELU. keras-cv's GEGLU gates with the tanh approximation of GELU; diffusers' GEGLU uses
   the exact erf GELU. The 16 GEGLU layers' class is swapped for `ExactGEGLU` (same
   variables, exact GELU).
3. Latent scaling. keras-cv's Decoder starts with Rescaling(1 / 0.18215) and its ImageEncoder
   ends with a Lambda keeping mean[..., :4] * 0.18215. `vae_decode` takes unscaled latents
   and `vae_encode` returns the 8 moment channels, so both run the models' inner layers and
   skip those two (no weights are copied; the models themselves are unchanged).
4. Timestep embedding. keras-cv's U-Net takes a 320-d timestep embedding as an input;
   `timestep_embedding` computes diffusers' (flip_sin_to_cos=True, freq_shift=0: [cos | sin])
   in float32 NumPy (within an ulp of the frequencies of diffusers' torch float32).
5. Positions. keras-cv's TextEncoder takes position ids as a second input: arange(77).
6. Sizes. keras-cv builds DiffusionModel and Decoder for one image size (`image_size`, used
   only by their own predict path). `unet` and `vae_decode` run the same layer objects at
   any latent size that is a multiple of 8 (U-Net) or any size (VAE): Functional.call /
   the Sequential's layers, traced per shape by tf.function. Nothing is rebuilt.

dtype: "float32" (default), "bfloat16" or "float16" set the Keras dtype policy while the
models are built (variables and compute in that dtype; Keras' Group/LayerNormalization
compute in float32 inside). Inputs and outputs stay float32 NumPy. A dtype this CPU cannot
run is a ConfigError naming the ones that do.

jit_compile=True wraps each model call in tf.function(jit_compile=True) (XLA); the default
is a plain tf.function graph.
"""
from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator, Mapping

import keras
import numpy as np
import tensorflow as tf

from gan_diffusion.errors import CheckpointError, ConfigError
from gan_diffusion.families.stable_diffusion import StableDiffusionModel
from gan_diffusion.sd import keras_cv_layout as layout
from gan_diffusion.sd.architectures import V1
from gan_diffusion.sd.checkpoint import load_weights
from gan_diffusion.sd.config import SDConfig
from gan_diffusion.sd.layout import same_networks

DTYPES = ("float32", "bfloat16", "float16")
MAX_LENGTH = 77
VOCAB_SIZE = 49408
UNET_MULTIPLE = 8      # latent sides: three 2x downsamplings in the U-Net
VAE_FACTOR = 8         # image pixels per latent pixel


def timestep_embedding(t: np.ndarray, dim: int = 320, max_period: float = 10000.0) -> np.ndarray:
    """diffusers' get_timestep_embedding(t, 320, flip_sin_to_cos=True, downscale_freq_shift=0)
    in float32: (B,) -> (B, 320) = [cos(t f) | sin(t f)], f_i = exp(-ln(10000) i / 160).

    The exponent and t * f are float32 products as in diffusers; exp, cos and sin are taken
    in float64 and rounded (correctly rounded, as torch's float32 kernels nearly are; NumPy's
    float32 exp is off by an ulp in a third of the frequencies, which t = 999 turns into 6e-5).
    """
    half = dim // 2
    exponent = (-math.log(max_period) * np.arange(half, dtype=np.float32)) / np.float32(half)
    freqs = np.exp(exponent.astype(np.float64)).astype(np.float32)                 # (160,)
    args = (np.asarray(t).astype(np.float32)[:, None] * freqs[None, :]).astype(np.float64)
    return np.concatenate([np.cos(args), np.sin(args)], axis=1).astype(np.float32)


def _keras_cv():
    from keras_cv.models import stable_diffusion as kcv
    from keras_cv.src.models.stable_diffusion.diffusion_model import GEGLU
    return kcv, GEGLU


def _exact_geglu_class():
    _, GEGLU = _keras_cv()

    class ExactGEGLU(GEGLU):
        """keras-cv's GEGLU with the exact (erf) GELU, as diffusers' GEGLU."""

        def call(self, inputs):
            x = self.dense(inputs)                       # (..., 2 * output_dim)
            x, gate = x[..., : self.output_dim], x[..., self.output_dim:]
            return x * keras.ops.gelu(gate, approximate=False)

    return ExactGEGLU


_EXACT_GEGLU = None


def _dtype_failure(dtype: str) -> Exception | None:
    """Run the op kinds SD uses once in `dtype`: None, or the error of a missing kernel."""
    if dtype == "float32":
        return None
    try:
        x = tf.cast(tf.random.normal((1, 8, 8, 4)), dtype)
        w = tf.cast(tf.random.normal((3, 3, 4, 8)), dtype)
        y = tf.nn.conv2d(x, w, 1, "SAME")                                # (1, 8, 8, 8)
        y = tf.image.resize(y, (16, 16), "nearest")
        y = tf.reshape(y, (1, -1, 8))
        y = tf.nn.softmax(tf.matmul(y, y, transpose_b=True)) @ y
        y = tf.nn.gelu(y, approximate=False) * tf.sigmoid(y)
        y = tf.gather(tf.cast(tf.ones((10, 8)), dtype), [1, 2]) + y[0, :2]
        y.numpy()
    except (tf.errors.NotFoundError, tf.errors.InvalidArgumentError,
            tf.errors.UnimplementedError) as err:
        return err
    return None


def _probe_dtype(dtype: str) -> None:
    """ConfigError when this device has no kernels for `dtype`, naming the dtypes that work."""
    err = _dtype_failure(dtype)
    if err is not None:
        works = [d for d in DTYPES if _dtype_failure(d) is None]
        raise ConfigError(f"dtype {dtype!r} does not run on this device with TensorFlow "
                          f"{tf.__version__} ({type(err).__name__}); dtypes that work here: "
                          f"{', '.join(works)}")


@contextlib.contextmanager
def _quiet_softmax():
    """At an 8x8 latent the U-Net's innermost self-attention sees one token, and Keras warns
    about a softmax over an axis of size 1 whenever it traces one (it is 1, as in diffusers)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="You are using a softmax over axis")
        yield


@contextlib.contextmanager
def _zero_init(enabled: bool):
    """Create Keras variables as zeros instead of drawing Keras' random initialisers (a
    quarter of the U-Net's build time) when the weights overwrite every variable next.
    Uses Keras 3's TF Variable hook; without it, the random initialisers run as usual."""
    cls = getattr(getattr(keras.src.backend, "tensorflow", None), "core", None)
    cls = getattr(cls, "Variable", None)
    hook = getattr(cls, "_initialize_with_initializer", None)
    if not enabled or hook is None:
        yield
        return

    def zeros(self, initializer):
        self._initialize(lambda: tf.zeros(self._shape, dtype=self._dtype))

    cls._initialize_with_initializer = zeros
    try:
        yield
    finally:
        cls._initialize_with_initializer = hook


def _resolve(model, path: str, by_class: dict):
    """A table path ("ResBlock:3/entry_flow/2/conv2d/kernel") -> the object it names."""
    cls, n, rest = layout.split_path(path)
    layers = by_class.get(cls, [])
    if n >= len(layers):
        raise RuntimeError(f"keras-cv's {type(model).__name__} has {len(layers)} {cls} layers, "
                           f"the table wants #{n}: keras-cv is not the 0.9 layout")
    obj = layers[n]
    for seg in rest:
        obj = obj[seg] if isinstance(seg, int) else getattr(obj, seg)
    return obj


class TFSDComponents:
    """Stable Diffusion v1's text encoder, U-Net and VAE on keras-cv's models.

    Args:
        weights: canonical weights (gan_diffusion/sd/__init__.py); None keeps Keras' random
            initialisation (structure only: not a usable model).
        dtype: "float32", "bfloat16" or "float16" (the Keras dtype policy of the models).
        jit_compile: compile each model call with XLA (tf.function(jit_compile=True)).
        image_size: (H, W) or H, a multiple of 64: the size keras-cv's functional
            DiffusionModel and Decoder are built for; it matters only to their own
            `predict`/`__call__` (keras-cv's StableDiffusion loop). This class's methods
            accept any multiple-of-64 image (multiple-of-8 latent) size.
    """

    def __init__(self, weights: Mapping[str, np.ndarray] | None = None, *,
                 dtype: str = "float32", jit_compile: bool = False,
                 image_size: int | tuple[int, int] = 512):
        if dtype not in DTYPES:
            raise ConfigError(f"dtype {dtype!r} is not supported; choose one of "
                              f"{', '.join(DTYPES)}")
        _probe_dtype(dtype)
        h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
        if h % 64 or w % 64 or h <= 0 or w <= 0:
            raise ConfigError(f"image_size {h}x{w} is not a positive multiple of 64 "
                              "(latents must be multiples of 8)")
        self.dtype, self.jit_compile, self.image_size = dtype, bool(jit_compile), (h, w)
        kcv, _ = _keras_cv()
        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy(dtype)
        try:
            with _zero_init(weights is not None), _quiet_softmax():
                self.text_encoder = kcv.TextEncoder(MAX_LENGTH, download_weights=False)
                self.diffusion_model = kcv.DiffusionModel(h, w, MAX_LENGTH,
                                                          download_weights=False)
                self.image_encoder = kcv.ImageEncoder(download_weights=False)
                self.decoder = kcv.Decoder(h, w, download_weights=False)
        finally:
            keras.config.set_dtype_policy(previous)
        self._by_class: dict[str, dict[str, list]] = {}
        self._variables = {name: self._bind(name) for name in layout.MODELS}
        self._check_vae_ends()
        self.set_published_numerics()
        if weights is not None:
            self.set_weights(weights)

    # -- structure -------------------------------------------------------------------------
    def _model(self, name: str):
        return getattr(self, name)

    def _bind(self, name: str) -> list:
        """The table's entries of one model -> its variables, checking that every keras-cv
        variable is named exactly once."""
        model = self._model(name)
        by_class: dict[str, list] = {}     # top-level layers by class name, in order
        for lay in model.layers:
            by_class.setdefault(type(lay).__name__, []).append(lay)
        variables = [_resolve(model, e.path, by_class) for e in layout.TABLE[name]]
        ids = [id(v) for v in variables]
        own = {id(v) for v in model.weights}
        if len(set(ids)) != len(ids) or set(ids) != own or len(own) != len(model.weights):
            raise RuntimeError(f"keras-cv's {type(model).__name__} has {len(model.weights)} "
                               f"variables; the table names {len(set(ids) & own)} of them "
                               f"({len(ids)} entries): keras-cv is not the 0.9 layout")
        self._by_class[name] = by_class
        return variables

    def _check_vae_ends(self):
        """The layers vae_encode / vae_decode skip are the latent-scaling ones."""
        first = type(self.decoder.layers[0]).__name__
        last = type(self.image_encoder.layers[-1]).__name__
        if first != "Rescaling" or last != "Lambda":
            raise RuntimeError(f"keras-cv's Decoder starts with {first} and ImageEncoder ends "
                               f"with {last} (0.9: Rescaling, Lambda): not the 0.9 layout")

    def set_published_numerics(self, epsilons: bool = True, exact_gelu: bool = True) -> None:
        """Deviations 1 (the published epsilons) and 2 (exact GELU), on by default; False
        puts keras-cv's own numerics back (to measure what each changes). Clears the traced
        functions, which hold the old values."""
        global _EXACT_GEGLU
        if _EXACT_GEGLU is None:
            _EXACT_GEGLU = _exact_geglu_class()
        _, GEGLU = _keras_cv()
        for name in layout.MODELS:
            model, by_class = self._model(name), self._by_class[name]
            for path, eps in layout.EPSILONS[name].items():
                _resolve(model, path, by_class).epsilon = eps if epsilons else 1e-5
        for st in self._by_class["diffusion_model"].get("SpatialTransformer", []):
            st.transformer_block.geglu.__class__ = _EXACT_GEGLU if exact_gelu else GEGLU
        self.published_numerics = {"epsilons": bool(epsilons), "exact_gelu": bool(exact_gelu)}
        self._functions: dict[str, object] = {}
        for name in layout.MODELS:                  # Keras' own traced predict, too
            self._model(name).predict_function = None

    # -- traced calls ----------------------------------------------------------------------
    def _function(self, name: str):
        """tf.function per model (retraced per input shape; XLA when jit_compile)."""
        if name not in self._functions:
            if name == "text_encoder":
                model = self.text_encoder

                def f(tokens, positions):
                    return model.call({"tokens": tokens, "positions": positions})
            elif name == "diffusion_model":
                model = self.diffusion_model

                def f(latent, t_emb, context):
                    return model.call({"latent": latent, "timestep_embedding": t_emb,
                                       "context": context})
            else:
                layers = (self.image_encoder.layers[:-1] if name == "image_encoder"
                          else self.decoder.layers[1:])

                def f(x):
                    for lay in layers:
                        x = lay(x)
                    return x
            self._functions[name] = tf.function(f, jit_compile=self.jit_compile,
                                                autograph=False)   # plain Python loops only
        return self._functions[name]

    def _run(self, name: str, *args) -> np.ndarray:
        """Call one model's traced function; float32 NumPy out."""
        with _quiet_softmax():
            out = self._function(name)(*args)
        return np.asarray(tf.cast(out, tf.float32).numpy(), dtype=np.float32)

    # -- the components interface ----------------------------------------------------------
    def encode_text(self, ids: np.ndarray) -> np.ndarray:
        """(B, 77) token ids -> (B, 77, 768) last hidden states (after final_layer_norm)."""
        ids = np.asarray(ids)
        if ids.ndim != 2 or ids.shape[1] != MAX_LENGTH:
            raise ConfigError(f"token ids have shape {ids.shape}; expected (batch, {MAX_LENGTH})")
        if ids.size and (ids.min() < 0 or ids.max() >= VOCAB_SIZE):
            raise ConfigError(f"token ids must lie in [0, {VOCAB_SIZE}); got "
                              f"[{ids.min()}, {ids.max()}]")
        positions = np.broadcast_to(np.arange(MAX_LENGTH, dtype=np.int32), ids.shape)
        return self._run("text_encoder", tf.constant(ids, tf.int32), tf.constant(positions))

    def unet(self, latents: np.ndarray, t, context: np.ndarray) -> np.ndarray:
        """(B, h, w, 4) latents, (B,) or scalar timesteps, (B, 77, 768) context -> eps."""
        latents = np.asarray(latents, np.float32)
        if latents.ndim != 4 or latents.shape[-1] != 4:
            raise ConfigError(f"latents have shape {latents.shape}; expected (batch, h, w, 4)")
        h, w = latents.shape[1:3]
        if h % UNET_MULTIPLE or w % UNET_MULTIPLE or not h or not w:
            raise ConfigError(f"latent size {h}x{w} is not a multiple of {UNET_MULTIPLE} "
                              f"(image size {h * VAE_FACTOR}x{w * VAE_FACTOR}: use a multiple "
                              f"of {UNET_MULTIPLE * VAE_FACTOR} px)")
        b = latents.shape[0]
        t = np.broadcast_to(np.asarray(t), (b,))
        context = np.asarray(context, np.float32)
        if context.shape != (b, MAX_LENGTH, 768):
            raise ConfigError(f"context has shape {context.shape}; expected ({b}, {MAX_LENGTH}, "
                              "768) (SD v1 text features)")
        return self._run("diffusion_model", tf.constant(latents),
                         tf.constant(timestep_embedding(t)), tf.constant(context))

    def vae_encode(self, images: np.ndarray) -> np.ndarray:
        """(B, H, W, 3) in [-1, 1] -> (B, H/8, W/8, 8) moments [mean | logvar], unscaled
        (quant_conv's output, logvar not clamped)."""
        images = np.asarray(images, np.float32)
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ConfigError(f"images have shape {images.shape}; expected (batch, H, W, 3)")
        h, w = images.shape[1:3]
        if h % VAE_FACTOR or w % VAE_FACTOR or not h or not w:
            raise ConfigError(f"image size {h}x{w} is not a multiple of {VAE_FACTOR}")
        return self._run("image_encoder", tf.constant(images))

    def vae_decode(self, latents: np.ndarray) -> np.ndarray:
        """(B, h, w, 4) unscaled latents -> (B, 8h, 8w, 3) images, about [-1, 1]."""
        latents = np.asarray(latents, np.float32)
        if latents.ndim != 4 or latents.shape[-1] != 4 or not all(latents.shape[1:3]):
            raise ConfigError(f"latents have shape {latents.shape}; expected (batch, h, w, 4)")
        return self._run("decoder", tf.constant(latents))

    # -- weights ---------------------------------------------------------------------------
    def iter_weights(self) -> Iterator[tuple[str, np.ndarray]]:
        """(canonical key, float32 array) one at a time, in table order (no dict held)."""
        for name in layout.MODELS:
            for entry, var in zip(layout.TABLE[name], self._variables[name]):
                value = np.asarray(tf.cast(var.value, tf.float32).numpy())
                yield entry.key, layout.from_keras_cv(entry, value)

    def get_weights(self) -> dict[str, np.ndarray]:
        """The canonical weights dict (float32, torch shapes), built once per call."""
        return dict(self.iter_weights())

    def set_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        """Assign canonical weights into the existing variables (no second model copy).

        Every array is checked before any is assigned, so a bad checkpoint changes nothing.

        Raises:
            CheckpointError: missing / unexpected keys, or a shape that is not SD v1's
                (naming the canonical key, the keras-cv variable and both shapes).
        """
        weights, self.load_notes = layout.normalize(weights)
        plan = []
        for name in layout.MODELS:                 # shapes first: they name the layer
            for entry, var in zip(layout.TABLE[name], self._variables[name]):
                if entry.key not in weights:
                    continue
                array = np.asarray(weights[entry.key])
                if not np.issubdtype(array.dtype, np.floating):
                    raise CheckpointError(f"weight {entry.key!r} has dtype {array.dtype}, "
                                          "expected floating point")
                plan.append((var, layout.to_keras_cv(entry, array, var.shape, name)))
        layout.check_keys(weights)
        for var, value in plan:
            var.assign(tf.cast(value, var.dtype))


class TFStableDiffusion(StableDiffusionModel):
    backend_name = "tf"


def build(config: SDConfig) -> TFStableDiffusion:
    """Read the config's weight set and build it on keras-cv's models (SD v1 at full size:
    keras-cv has no other sizes, and its V2 classes are not wired to the converter)."""
    if config.model != "sd-v1":
        raise ConfigError(f"{config.model} is not available on the tf backend (keras-cv's "
                          "V2 classes are not converted here); use --backend torch")
    if config.device != "cpu":
        raise ConfigError(f"device {config.device!r}: the tf backend takes device cpu (TensorFlow "
                          "places its ops on a visible GPU itself when its GPU build is installed)")
    weight_set = load_weights(config.weights, config.model, config.tokenizer or None)
    if not same_networks(weight_set.arch, V1):
        raise ConfigError(f"{config.weights}: the tf backend runs keras-cv's full-size SD v1 "
                          "models only; this checkpoint has another architecture (use --backend "
                          "torch)")
    components = TFSDComponents(weight_set.weights, dtype=config.dtype,
                                jit_compile=config.jit_compile)
    weight_set.weights.clear()      # copied into the TF variables: free the NumPy arrays
    return TFStableDiffusion(config, weight_set, components)
