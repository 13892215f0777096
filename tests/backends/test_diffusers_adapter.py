"""Bring your own network: a diffusers UNet2DModel (tiny, randomly initialised from a config,
nothing downloaded) drives our samplers through DiffusersNoisePredictor, and the result
equals diffusers' own DDIMPipeline / DDPMPipeline for the same x_T and step noise.

Tolerance 2e-4 on images in [0, 1] (the pipelines' output): the network calls are identical,
the difference is diffusers' float32 scheduler coefficients against our float64 ones
(tests/backends/test_diffusion_core.py); measured 5e-5 (DDIM, 10 steps), 2e-6 (DDPM, 20 steps).
"""
import numpy as np
import pytest
import torch
from diffusers import DDIMPipeline, DDIMScheduler, DDPMPipeline, DDPMScheduler, UNet2DModel
from diffusers.utils.torch_utils import randn_tensor

from gan_diffusion import noise
from gan_diffusion.schedulers import denoise, make_schedule, make_scheduler
from gan_diffusion.torch_backend.diffusers_unet import DiffusersNoisePredictor

SHAPE = (2, 1, 16, 16)   # NCHW, diffusers' layout


@pytest.fixture(scope="module")
def unet():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)        # a tiny net: threads only add synchronisation on shared cores
    torch.manual_seed(0)
    net = UNet2DModel(sample_size=16, in_channels=1, out_channels=1, layers_per_block=1,
                      block_out_channels=(8, 16), down_block_types=("DownBlock2D", "AttnDownBlock2D"),
                      up_block_types=("AttnUpBlock2D", "UpBlock2D"), norm_num_groups=4,
                      attention_head_dim=8).eval()
    yield net
    torch.set_num_threads(threads)


def nhwc(t: torch.Tensor) -> np.ndarray:
    return t.numpy().transpose(0, 2, 3, 1)


@pytest.mark.parametrize("sampler,steps", [("ddim", 10), ("ddpm", 20)])
def test_adapter_sampling_equals_diffusers_pipeline(unet, sampler, steps):
    g = torch.Generator().manual_seed(0)
    if sampler == "ddim":
        ref = DDIMPipeline(unet, DDIMScheduler())(batch_size=2, generator=g, num_inference_steps=steps,
                                                  eta=0.0, output_type="np").images
    else:
        ref = DDPMPipeline(unet, DDPMScheduler())(batch_size=2, generator=g, num_inference_steps=steps,
                                                  output_type="np").images
    # the pipeline draws x_T, then each step's noise, from one generator: replay those draws
    g = torch.Generator().manual_seed(0)
    x_T = nhwc(randn_tensor(SHAPE, generator=g))
    ours = make_scheduler(sampler, make_schedule("linear"), steps=steps)
    x0 = denoise(DiffusersNoisePredictor(unet), ours, x_T, progress=False,
                 noise_fn=lambda i, shape: nhwc(randn_tensor(SHAPE, generator=g)))
    got = np.clip(x0 / 2 + 0.5, 0, 1)                    # the pipelines' output range
    assert ref.shape == got.shape == (2, 16, 16, 1)
    assert np.abs(got - ref).max() < 2e-4, np.abs(got - ref).max()
    assert np.abs(x0 - x_T).max() > 0.1                    # the network really denoised


def test_adapter_matches_the_network_and_gives_a_training_loss(unet):
    predict = DiffusersNoisePredictor(unet)
    x = noise.normal(0, "sample", 0, (2, 16, 16, 1))
    t = np.array([3, 700])
    with torch.no_grad():
        direct = unet(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()), torch.tensor(t)).sample
    np.testing.assert_allclose(predict(x, t), nhwc(direct), atol=1e-6)
    schedule = make_schedule("linear")
    x0 = np.tanh(x)
    z = noise.normal(0, "diffusion", 0, x.shape)
    loss = predict.loss(x0, t, z, schedule)
    expected = np.mean((predict(schedule.q_sample(x0, t, z), t) - z) ** 2)
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-5)
    loss.backward()                                         # differentiable: trainable with any optimizer
    assert unet.conv_out.weight.grad is not None and unet.conv_out.weight.grad.abs().max() > 0
    unet.zero_grad(set_to_none=True)
