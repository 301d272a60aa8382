"""Model-side importance maps for a set of stimuli, written in the docs/formats.md section 4
layout (maps/METHOD/STIMULUS_ID.npy + maps/METHOD/index.json) so analysis joins them with the
human ClickMe maps on stimulus id, and the known-truth verdict of each method
(models/attribution/known_truth.json, written by `python -m benchmarks attribution_truth`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.attribution import methods as M
from models.attribution.store import write_maps
from models.classifiers.feedback import FeedbackClassifier
from models.diffusion.store import load_diffusion
from models.sample import schedule_of

KNOWN_TRUTH = Path(M.__file__).with_name("known_truth.json")
# map name in a run -> the method the known-truth benchmark scored
BENCHMARKED_AS = {"diffusion_score_noised": "diffusion_score_noised", "guidance_difference": "guidance_difference",
                  "conditional_gain": "conditional_gain", "feedback_saliency": "saliency",
                  "feedback_gradcam": "gradcam"}
METHODS = tuple(BENCHMARKED_AS)


def diffusion_maps(net, schedule, images: torch.Tensor, exemplars: torch.Tensor, seed: int,
                   device: torch.device) -> dict[str, tuple[np.ndarray, dict[str, Any]]]:
    """The CFGDM's three maps of the stimuli (context: each stimulus's class exemplar), each with
    the parameters it ran with: its method's default noise draws and 10 timesteps, the counts
    chosen from measured map reliability (docs/attribution.md)."""
    kw = {"seed": seed, "device": device}
    maps = {
        # Forward-noised copies of the stimulus, not the sampling path: models.attribution.cli calls
        # that other variant "diffusion_score", so this one keeps its own name.
        "diffusion_score_noised": M.diffusion_score_noised(net, schedule, images, exemplars, w=1.0, **kw),
        "guidance_difference": M.guidance_difference(net, schedule, images, exemplars, **kw),
        "conditional_gain": M.conditional_gain(net, schedule, images, exemplars, **kw),
    }
    out = {}
    for name, m in maps.items():
        out[name] = (m, {"w": 1.0, "n_draws": M.default_draws(name), "timesteps": M.default_timesteps(schedule.T), "seed": seed,
                         "context": "exemplar"})
    return out


def classifier_maps(feedback: FeedbackClassifier, images: torch.Tensor, class_index: torch.Tensor,
                    device: torch.device) -> dict[str, np.ndarray]:
    """Captum Saliency and Grad-CAM of the feedback classifier for each stimulus's class. The
    feedback classifier reads PNG polarity (ink dark), so its input is the negated image."""
    x = -images
    return {"feedback_saliency": M.saliency(feedback.net, x, class_index, device=device),
            "feedback_gradcam": M.gradcam(feedback.net, x, class_index, device=device)}


def stimulus_maps(out: Path, ids: list[str], images: torch.Tensor, exemplars: torch.Tensor,
                  class_index: torch.Tensor, diffusion_ckpt: Path, feedback: FeedbackClassifier,
                  feedback_ckpt: Path, device: torch.device, seed: int) -> list[str]:
    """Five maps per stimulus, all on forward-noised copies of the image or on the image itself:
    - `diffusion_score_noised`: the guided-noise magnitude of the CFGDM (context: the class's
      exemplar, w = 1), the score as the seed papers define it;
    - `guidance_difference` and `conditional_gain`: what the exemplar changes in the CFGDM's
      prediction, and where it lowers the denoising error;
    - `feedback_saliency`, `feedback_gradcam`: Captum Saliency and Grad-CAM of the feedback
      classifier for the stimulus's class.
    images, exemplars (N, 1, H, W) in [-1, 1]; class_index (N,) the feedback classifier's class of
    each stimulus. Returns the methods."""
    net, cfg, _meta = load_diffusion(diffusion_ckpt, device)
    for name, (maps, params) in diffusion_maps(net, schedule_of(cfg), images, exemplars, seed, device).items():
        write_maps(out, name, ids, maps, params, str(diffusion_ckpt))
    for name, maps in classifier_maps(feedback, images, class_index, device).items():
        write_maps(out, name, ids, maps, {"target": "stimulus class"}, str(feedback_ckpt))
    return list(METHODS)


def known_truth_verdicts(path: Path = KNOWN_TRUTH) -> dict[str, Any]:
    """{map name: the benchmark's entry for its method ({"works": bool, "models": {...}})}, plus
    the benchmark's command and date under "_source"; empty when the file is missing."""
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    methods = data.get("methods", {})
    out: dict[str, Any] = {name: methods[m] for name, m in BENCHMARKED_AS.items() if m in methods}
    out["_source"] = {"command": data.get("command", ""), "date": data.get("date", "")}
    return out
