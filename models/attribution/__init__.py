"""Model-side attribution maps: Captum classifier saliency and diffusion attribution.

`models.attribution.methods` holds one batched function per method, each returning non-negative
(N, H, W) float32 maps on the image grid; `store` writes them as docs/formats.md section 4
prescribes; `cli` computes them for a whole stimulus manifest.
"""
