"""Model-side importance maps for a set of stimuli, written in the docs/formats.md section 4
layout (maps/METHOD/STIMULUS_ID.npy + maps/METHOD/index.json) so analysis joins them with the
human ClickMe maps on stimulus id. The maps themselves come from models.attribution.methods."""

from __future__ import annotations

from pathlib import Path

import torch

from models.attribution.methods import diffusion_score_noised, gradcam, saliency
from models.attribution.store import write_maps
from models.checkpoint import load_checkpoint
from models.classifiers.feedback import FeedbackClassifier
from models.sample import schedule_of

METHODS = ("diffusion_score_noised", "feedback_saliency", "feedback_gradcam")


def stimulus_maps(out: Path, ids: list[str], images: torch.Tensor, exemplars: torch.Tensor,
                  class_index: torch.Tensor, diffusion_ckpt: Path, feedback: FeedbackClassifier,
                  feedback_ckpt: Path, device: torch.device, seed: int) -> list[str]:
    """Three maps per stimulus: the CFGDM guided-noise score along forward-noised copies of the
    image (context: its class's exemplar, w = 1), and Captum Saliency and Grad-CAM of the
    feedback classifier for the stimulus's class. images, exemplars (N, 1, H, W) in [-1, 1];
    class_index (N,) the feedback classifier's class of each stimulus. Returns the methods."""
    net, cfg, _meta = load_checkpoint(diffusion_ckpt, device)
    params = {"w": 1.0, "n_draws": 2, "seed": seed}
    dmaps = diffusion_score_noised(net, schedule_of(cfg), images, exemplars, w=1.0, n_draws=2,
                                   seed=seed, device=device)
    # Forward-noised copies of the stimulus, not the sampling path: models.attribution.cli calls
    # that other variant "diffusion_score", so this one keeps its own name.
    write_maps(out, "diffusion_score_noised", ids, dmaps, params, str(diffusion_ckpt))
    # The feedback classifier reads PNG polarity (ink dark): its input is the negated image.
    x = -images
    write_maps(out, "feedback_saliency", ids, saliency(feedback.net, x, class_index, device=device),
               {"target": "stimulus class"}, str(feedback_ckpt))
    write_maps(out, "feedback_gradcam", ids, gradcam(feedback.net, x, class_index, device=device),
               {"target": "stimulus class"}, str(feedback_ckpt))
    return list(METHODS)
