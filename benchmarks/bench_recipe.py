"""Which training recipe buys the most recognizability per CPU-hour? Ablations on real Omniglot.

`python -m benchmarks recipe [--data ../shared/data/omniglot] [--steps 1500] [--jobs 2] [--no-write]`

Every variant is the exemplar-conditioned CFGDM of models/configs/omniglot_cfgdm.toml at 28 px,
shrunk to a CPU budget (n_feat 24, channel_mults 1-2-2, one residual block, batch 32), trained
for `--steps` steps on the training classes, then sampled at guidance w = 2 for `--classes`
held-out characters (`--per-class` samples each, one held-out exemplar per character) and scored:

- recognizability: the one-shot critic's accuracy in 20-way 1-shot tasks among the held-out
  exemplars (experiments.artist.critic_answers; the critic is models.classifiers.protonet's
  recipe trained on the training classes only, cached);
- FD: the Frechet distance between the critic's embeddings of the samples and of the held-out
  human drawings of the same characters (lower is closer to people);
- the CPU seconds of training (the process's own CPU time, so other jobs on the machine do not
  inflate it) and of sampling.

Variants change one thing against `baseline` (linear schedule, eps-prediction, uniform loss,
constant learning rate, EMA with warm-up): cosine schedule, cosine shifted to less noise,
min-SNR weighting, v-prediction (cosine), cosine learning-rate decay, no EMA warm-up, and batch
64 for half the steps. `combined` then takes every change that beat the baseline by more than
one standard error. Its checkpoint is sampled with DDIM-50, DPM-Solver++(2M) at 10 and 25 steps.
The peer baseline, diffusers' UNet2DModel (widths 24-48-48, no attention, exemplar as a second
input channel like ours) trained with diffusers' DDPMScheduler for the CPU seconds our baseline
took and sampled by that scheduler in 50 steps, is scored the same way; the table gives the ratio.

Writes the section `recipe` of BENCHMARKS.md; checkpoints and samples stay under `--out`.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks.report import ROOT, add_replay_options, markdown_table, run_or_replay  # noqa: E402

BASE_CONFIG = ROOT / "models" / "configs" / "omniglot_cfgdm.toml"
SMALL = {
    "data.size": 28, "model.n_feat": 24, "model.channel_mults": [1, 2, 2], "model.n_res": 1,
    "training.batch_size": 32, "training.lr": 1e-3, "training.warmup": 200, "training.ema_decay": 0.995,
    "training.log_every": 50,
}
VARIANTS: dict[str, dict] = {
    "baseline": {},
    "cosine": {"diffusion.schedule": "cosine"},
    "cosine_shift_0.5": {"diffusion.schedule": "cosine", "diffusion.snr_shift": 0.5},
    "min_snr": {"training.loss_weighting": "min_snr"},
    "v_prediction": {"diffusion.schedule": "cosine", "diffusion.prediction": "v"},
    "lr_cosine": {"training.lr_schedule": "cosine"},
    "no_ema_warmup": {"training.ema_warmup": False},
    "batch64_half_steps": {"training.batch_size": 64, "steps_factor": 0.5},
}
SAMPLER_RUNS = (("ddim", 50), ("dpmpp_2m", 10), ("dpmpp_2m", 25))
GUIDANCE = 2.0


def _config(data_root: str, steps: int, overrides: dict, name: str):
    from models.config import config_from_dict, load_config

    cfg = load_config(BASE_CONFIG).to_dict()
    cfg["name"] = name.replace(".", "_")
    cfg["data"]["root"] = str(Path(data_root).resolve())
    changes = {**SMALL, **{k: v for k, v in overrides.items() if k != "steps_factor"}}
    changes["training.steps"] = max(1, int(steps * overrides.get("steps_factor", 1.0)))
    changes["training.checkpoint_every"] = changes["training.steps"] + 1
    for key, value in changes.items():
        section, field = key.split(".")
        cfg[section][field] = value
    return config_from_dict(cfg)


def _train_variant(args: tuple) -> dict:
    """In a worker: train one variant with one torch thread; returns its checkpoint and CPU time."""
    name, data_root, steps, overrides, out = args
    torch.set_num_threads(1)
    from models.diffusion.training import train

    cfg = _config(data_root, steps, overrides, name)
    folder = Path(out) / "models" / name
    done = folder / "done.json"
    if done.exists():
        record = json.loads(done.read_text())
        if record.get("config") == cfg.to_dict():
            return record
    start = time.process_time()
    result = train(cfg, folder, device="cpu", progress=False)
    record = {"name": name, "checkpoint": str(result.checkpoint), "train_cpu_s": time.process_time() - start,
              "steps": cfg.training.steps, "config": cfg.to_dict(), "loss_last": result.metrics["loss_last"]}
    done.write_text(json.dumps(record))
    return record


class _Scorer:
    """Held-out exemplars, human drawings and the critic, shared by every variant's scoring."""

    def __init__(self, data_root: str, out: Path, n_classes: int, seed: int, critic_episodes: int | None) -> None:
        from models.classifiers.protonet import CriticRecipe, train_critic
        from models.classifiers.store import load_classifier, save_classifier
        from models.diffusion.training import load_training_data

        cfg = _config(data_root, 1, {}, "scorer")
        train_set, heldout, split = load_training_data(cfg)
        self.classes = sorted(heldout.class_names)[:n_classes]
        self.split = split
        pos = {i: k for k, i in enumerate(heldout.ids)}
        self.exemplars = torch.stack([heldout.images[pos[split["exemplars"][c]]] for c in self.classes])
        ex_ids = {split["exemplars"][c] for c in self.classes}
        keep = [k for k, i in enumerate(heldout.ids)
                if heldout.class_names[int(heldout.labels[k])] in self.classes and i not in ex_ids]
        self.humans = heldout.images[keep]
        self.human_class = np.array([self.classes.index(heldout.class_names[int(heldout.labels[k])]) for k in keep])
        recipe = CriticRecipe() if critic_episodes is None else CriticRecipe(episodes=critic_episodes)
        key = hashlib.sha256(json.dumps([train_set.content_hash(), dataclasses.asdict(recipe), seed]).encode())
        critic_path = out / "critic" / f"critic_{key.hexdigest()[:16]}.pt"
        if critic_path.exists():
            self.critic = load_classifier(critic_path, "cpu")[0]
        else:
            self.critic = train_critic(train_set.images, train_set.labels, recipe, seed=seed, progress=True)
            save_classifier(critic_path, self.critic, {"kind": "protonet", "size": train_set.size},
                            {"train_hash": train_set.content_hash(), "seed": seed})
        self.human_feats = self._embed(self.humans)

    @torch.no_grad()
    def _embed(self, images: torch.Tensor) -> np.ndarray:
        self.critic.eval()
        return torch.cat([self.critic(images[i:i + 512]) for i in range(0, len(images), 512)]).numpy()

    def score(self, images: torch.Tensor, classes: np.ndarray, seed: int) -> dict:
        from analysis.generalization import frechet_distance
        from experiments.artist import critic_answers

        correct = critic_answers(self.critic, self.exemplars, images, classes, 20, seed, torch.device("cpu"))
        return {"recognizability": float(correct.mean()),
                "recognizability_se": float(correct.std(ddof=1) / np.sqrt(len(correct))),
                "fd": frechet_distance(self._embed(images), self.human_feats), "n": len(correct)}

    def human_score(self, seed: int) -> dict:
        return self.score(self.humans, self.human_class, seed)


def _sample_ours(checkpoint: str, scorer: _Scorer, per_class: int, sampler: str, steps: int, seed: int):
    from models.diffusion.store import load_diffusion
    from models.sample import generate, schedule_of

    net, cfg, _ = load_diffusion(checkpoint, "cpu")
    classes = np.repeat(np.arange(len(scorer.classes)), per_class)
    context = scorer.exemplars[torch.as_tensor(classes)]
    start = time.process_time()
    images = []
    for i in range(0, len(classes), 100):
        x = generate(net, schedule_of(cfg), context[i:i + 100], [seed + k for k in range(i, min(i + 100, len(classes)))],
                     w=GUIDANCE, sampler=sampler, steps=steps)
        images.append(torch.where(x > 0, 1.0, -1.0))
    return torch.cat(images), classes, time.process_time() - start


def _diffusers_unet(size: int):
    from diffusers import UNet2DModel

    return UNet2DModel(sample_size=size, in_channels=2, out_channels=1, layers_per_block=1,
                       block_out_channels=(24, 48, 48), down_block_types=("DownBlock2D",) * 3,
                       up_block_types=("UpBlock2D",) * 3, norm_num_groups=8, add_attention=False)


def _train_diffusers(args: tuple) -> dict:
    """In a worker: diffusers' UNet2DModel + DDPMScheduler (T = 500, linear betas, eps-MSE),
    exemplar context dropped with p = 0.1 like ours, AdamW at our learning rate, EMA-free, for
    `budget_s` CPU seconds. Returns the state dict path, steps and CPU time."""
    data_root, budget_s, out, seed = args
    torch.set_num_threads(1)
    from diffusers import DDPMScheduler

    from models.diffusion.context import ContextSampler, drop_context
    from models.diffusion.training import load_training_data

    folder = Path(out) / "models" / "diffusers"
    done = folder / "done.json"
    if done.exists() and json.loads(done.read_text()).get("budget_s") == budget_s:
        return json.loads(done.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    cfg = _config(data_root, 1, {}, "diffusers")
    train_set, _, _ = load_training_data(cfg)
    contexts = ContextSampler(train_set, "exemplar", 1)
    torch.manual_seed(seed)
    unet = _diffusers_unet(cfg.data.size)
    sched = DDPMScheduler(num_train_timesteps=cfg.diffusion.T, beta_schedule="linear",
                          beta_start=cfg.diffusion.beta_start, beta_end=cfg.diffusion.beta_end)
    opt = torch.optim.AdamW(unet.parameters(), lr=SMALL["training.lr"], weight_decay=0.0)
    gen = torch.Generator().manual_seed(seed)
    batch, step, start = SMALL["training.batch_size"], 0, time.process_time()

    class _Null:  # drop_context's view of an exemplar-conditioned network
        context_mode = "exemplar"

        @staticmethod
        def null_context(c):
            return torch.zeros_like(c)

    while time.process_time() - start < budget_s:
        idx = torch.randint(len(train_set), (batch,), generator=gen)
        x0 = train_set.images[idx]
        ctx = drop_context(_Null(), contexts(idx, gen), torch.rand(batch, generator=gen) < 0.1)
        noise = torch.randn(x0.shape, generator=gen)
        t = torch.randint(0, cfg.diffusion.T, (batch,), generator=gen)
        pred = unet(torch.cat([sched.add_noise(x0, noise, t), ctx], 1), t).sample
        loss = torch.nn.functional.mse_loss(pred, noise)
        for group in opt.param_groups:
            group["lr"] = SMALL["training.lr"] * min(1.0, (step + 1) / SMALL["training.warmup"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        step += 1
    torch.save(unet.state_dict(), folder / "unet.pt")
    record = {"steps": step, "train_cpu_s": time.process_time() - start, "budget_s": budget_s,
              "diffusion": {"T": cfg.diffusion.T, "beta_start": cfg.diffusion.beta_start,
                            "beta_end": cfg.diffusion.beta_end},
              "params": sum(p.numel() for p in unet.parameters()), "state": str(folder / "unet.pt")}
    done.write_text(json.dumps(record))
    return record


@torch.no_grad()
def _sample_diffusers(record: dict, scorer: _Scorer, per_class: int, seed: int):
    from diffusers import DDPMScheduler

    unet = _diffusers_unet(SMALL["data.size"])
    unet.load_state_dict(torch.load(record["state"], map_location="cpu"))
    unet.eval()
    diffusion = record["diffusion"]
    sched = DDPMScheduler(num_train_timesteps=diffusion["T"], beta_schedule="linear",
                          beta_start=diffusion["beta_start"], beta_end=diffusion["beta_end"])
    sched.set_timesteps(50)
    classes = np.repeat(np.arange(len(scorer.classes)), per_class)
    images, start = [], time.process_time()
    for i in range(0, len(classes), 100):
        ctx = scorer.exemplars[torch.as_tensor(classes[i:i + 100])]
        gen = torch.Generator().manual_seed(seed + i)
        x = torch.randn(ctx.shape, generator=gen)
        for t in sched.timesteps:
            both = unet(torch.cat([torch.cat([x, x]), torch.cat([ctx, torch.zeros_like(ctx)])], 1), t).sample
            eps_c, eps_u = both.chunk(2)
            x = sched.step((1 + GUIDANCE) * eps_c - GUIDANCE * eps_u, t, x, generator=gen).prev_sample
        images.append(torch.where(x.clamp(-1, 1) > 0, 1.0, -1.0))
    return torch.cat(images), classes, time.process_time() - start


def _combined(results: dict[str, dict]) -> dict:
    """The overrides of every variant that beat the baseline by more than one standard error."""
    base = results["baseline"]
    merged: dict = {}
    for name, overrides in VARIANTS.items():
        r = results.get(name)
        if name == "baseline" or r is None:
            continue
        se = max(r["recognizability_se"], base["recognizability_se"])
        if r["recognizability"] - base["recognizability"] > se:
            merged.update(overrides)
    return merged


def run(args: argparse.Namespace) -> dict:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    wall0, cpu_children0 = time.time(), os.times()
    scorer = _Scorer(args.data, out, args.classes, args.seed, args.critic_episodes)
    human = scorer.human_score(args.seed)
    print(f"human drawings: recognizability {human['recognizability']:.3f}", flush=True)
    names = [n for n in VARIANTS if args.only is None or n in args.only]
    jobs = [(n, args.data, args.steps, VARIANTS[n], str(out)) for n in names]
    results: dict[str, dict] = {}
    with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
        for record in pool.map(_train_variant, jobs):
            images, classes, sample_cpu = _sample_ours(record["checkpoint"], scorer, args.per_class, "ddim", 50, args.seed)
            record.update(scorer.score(images, classes, args.seed), sample_cpu_s=sample_cpu, sampler="ddim-50")
            results[record["name"]] = record
            print(f"{record['name']}: recognizability {record['recognizability']:.3f} "
                  f"(SE {record['recognizability_se']:.3f}), FD {record['fd']:.1f}, "
                  f"train {record['train_cpu_s']:.0f} CPU-s", flush=True)
        combined = _combined(results) if "baseline" in results else {}
        VARIANTS["combined"] = combined
        tail = [("combined", args.data, args.steps, combined, str(out))]
        budget = results["baseline"]["train_cpu_s"] if "baseline" in results else None
        futures = [pool.submit(_train_variant, tail[0])]
        if budget is not None and not args.skip_diffusers:
            futures.append(pool.submit(_train_diffusers, (args.data, round(budget), str(out), args.seed)))
        finished = [f.result() for f in futures]
    record = finished[0]
    samplers = {}
    for sampler, steps in SAMPLER_RUNS:
        images, classes, cpu = _sample_ours(record["checkpoint"], scorer, args.per_class, sampler, steps, args.seed)
        samplers[f"{sampler}-{steps}"] = {**scorer.score(images, classes, args.seed), "sample_cpu_s": cpu}
        print(f"combined, {sampler}-{steps}: {samplers[f'{sampler}-{steps}']['recognizability']:.3f}", flush=True)
    record.update(samplers["ddim-50"], sampler="ddim-50", overrides=combined)
    results["combined"] = record
    peer = None
    if len(finished) > 1:
        peer = finished[1]
        images, classes, cpu = _sample_diffusers(peer, scorer, args.per_class, args.seed)
        peer.update(scorer.score(images, classes, args.seed), sample_cpu_s=cpu)
        print(f"diffusers: recognizability {peer['recognizability']:.3f} after {peer['steps']} steps", flush=True)
    cpu = os.times()
    summary = {"results": results, "samplers": samplers, "diffusers": peer, "human": human,
               "wall_s": time.time() - wall0,
               "cpu_s": (cpu.user + cpu.system + cpu.children_user + cpu.children_system)
               - (cpu_children0.user + cpu_children0.system + cpu_children0.children_user + cpu_children0.children_system),
               "args": {k: v for k, v in vars(args).items() if k != "only"}}
    (out / "recipe.json").write_text(json.dumps(summary, indent=1, default=str))
    return summary


def _fmt_overrides(overrides: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in overrides.items()) or "(none)"


def report(summary: dict) -> str:
    a, res, human = summary["args"], summary["results"], summary["human"]
    base = res["baseline"]
    rows = [[name, _fmt_overrides(VARIANTS.get(name, r.get("overrides", {}))) if name != "combined"
             else _fmt_overrides(r.get("overrides", {})), r["steps"],
             f"{r['recognizability']:.3f} ({r['recognizability_se']:.3f})",
             f"{r['recognizability'] - base['recognizability']:+.3f}", f"{r['fd']:.1f}",
             f"{r['train_cpu_s']:.0f}", f"{r['sample_cpu_s']:.0f}"] for name, r in res.items()]
    lines = [
        "### Training recipe: recognizability per CPU-hour (real Omniglot, 28 px)",
        "",
        f"Command: `python -m benchmarks recipe --steps {a['steps']} --jobs {a['jobs']}` "
        f"({summary['wall_s'] / 60:.0f} min wall, {summary['cpu_s'] / 60:.0f} CPU-min in all, "
        f"{platform.machine()}, one torch thread per training job). CFGDM (exemplar-conditioned) of "
        "models/configs/omniglot_cfgdm.toml shrunk to n_feat 24, channel_mults 1-2-2, 1 residual block, "
        f"batch 32, {a['steps']} steps; {a['classes']} held-out characters x {a['per_class']} samples at "
        "w = 2, binarised; recognizability = the one-shot critic's 20-way 1-shot accuracy (chance 0.05) "
        "among the held-out exemplars (SE in brackets); FD = Frechet distance to the held-out human "
        "drawings in the critic's embedding. CPU seconds are the training process's own.",
        "",
        markdown_table(["variant", "change against baseline", "steps", "recognizability (SE)",
                        "vs baseline", "FD", "train CPU-s", "sample CPU-s"], rows),
        "",
        f"Human drawings of the same characters, same critic: recognizability {human['recognizability']:.3f} "
        f"(SE {human['recognizability_se']:.3f}), FD to themselves 0 by definition.",
        "",
        "Samplers on `combined` (same noise seeds; NFE = network evaluations per sample, two per "
        "step under guidance):",
        "",
        markdown_table(["sampler", "recognizability (SE)", "FD", "sample CPU-s"],
                       [[name, f"{s['recognizability']:.3f} ({s['recognizability_se']:.3f})", f"{s['fd']:.1f}",
                         f"{s['sample_cpu_s']:.0f}"] for name, s in summary["samplers"].items()]),
    ]
    peer = summary.get("diffusers")
    if peer:
        ratio = base["recognizability"] / peer["recognizability"] if peer["recognizability"] > 0 else float("inf")
        lines += [
            "",
            "Peer baseline at the same CPU budget (diffusers' UNet2DModel, widths 24-48-48, "
            f"{peer['params']:,} parameters, DDPMScheduler training and 50-step sampling, w = 2):",
            "",
            markdown_table(["network", "train CPU-s", "steps", "recognizability (SE)", "FD"], [
                ["ours, baseline recipe", f"{base['train_cpu_s']:.0f}", base["steps"],
                 f"{base['recognizability']:.3f} ({base['recognizability_se']:.3f})", f"{base['fd']:.1f}"],
                ["diffusers UNet2DModel + DDPMScheduler", f"{peer['train_cpu_s']:.0f}", peer["steps"],
                 f"{peer['recognizability']:.3f} ({peer['recognizability_se']:.3f})", f"{peer['fd']:.1f}"],
            ]),
            "",
            f"Ratio of recognizability, ours / diffusers, same CPU budget: **{ratio:.2f}**.",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks recipe", description=__doc__.split("\n")[0])
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "omniglot"),
                   help="Omniglot folder or zips (default: ../shared/data/omniglot)")
    p.add_argument("--steps", type=int, default=1500, help="training steps per variant")
    p.add_argument("--classes", type=int, default=40, help="held-out characters sampled")
    p.add_argument("--per-class", type=int, default=10, help="samples per character")
    p.add_argument("--jobs", type=int, default=2, help="variants trained at once (one thread each)")
    p.add_argument("--only", nargs="+", default=None, help="run only these variants (baseline needed for combined)")
    p.add_argument("--skip-diffusers", action="store_true", help="leave out the diffusers peer baseline")
    p.add_argument("--critic-episodes", type=int, default=None, help="critic training episodes (default: the recipe's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(ROOT / "data" / "bench" / "recipe"))
    add_replay_options(p)
    args = p.parse_args(argv)

    def check() -> str | None:
        return None if Path(args.data).exists() else f"--data: {args.data} does not exist (Omniglot folder or zips)"

    return run_or_replay(args, "recipe", check, run, report)
