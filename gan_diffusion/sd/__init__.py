"""Stable Diffusion (Rombach et al. 2022), framework-free parts: configs, the CLIP tokenizer,
the checkpoint-folder reader, seeded random weights and the NumPy sampling loop.

The backends supply the networks (`tf_backend/stable_diffusion.py`: keras-cv's models;
`torch_backend/stable_diffusion.py`: diffusers' and transformers' models), each as an
`SDComponents` object with NumPy in and out, channels-last:

    encode_text(ids (B, 77) int64)                      -> context (B, 77, D) float32
    unet(latents (B, h, w, 4), t (B,) int64, context)   -> eps (B, h, w, 4)
    vae_encode(images (B, H, W, 3) in [-1, 1])          -> moments (B, h, w, 8) = [mean | logvar]
    vae_decode(latents (B, h, w, 4), unscaled)          -> images (B, H, W, 3), about [-1, 1]
    get_weights() / set_weights(weights)                   canonical weights, below

with h = H / 8. Latent scaling (0.18215) belongs to the sampling loop, not to the components.

Canonical weights are the published weight set itself: the diffusers checkpoint folder's
state-dict keys and arrays, prefixed by component, e.g. "unet/conv_in.weight" (torch
shapes), "vae/decoder.conv_out.bias", "text_encoder/text_model.final_layer_norm.weight".
The torch side loads them as they are; the TensorFlow side converts them into keras-cv's
variables (transposes only, bit-exact both ways).
"""
