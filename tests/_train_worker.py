"""Worker of the 2-process data-parallel test (spawned; must be importable, not defined in a test).

Each rank joins a gloo group, trains twice (statistics all-reduced, then the control with the
all-reduce switched off) and writes its result, plus a fingerprint of the first batch it saw, to
``<out_dir>/<run>_rank<r>.json``.
"""

import json
from pathlib import Path

import torch
import torch.distributed as dist


def run(rank: int, world: int, init_file: str, out_dir: str, cfg_kwargs: dict) -> None:
    torch.set_num_threads(1)
    from adabit_lite.train import TrainConfig, train

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world)
    try:
        for name, sync in (("sync", True), ("nosync", False)):
            seen = {}

            def first_batch(epoch, batch, model):
                if (epoch, batch) != (0, 0):
                    return

                def hook(module, args):
                    seen.update(shape=list(args[0].shape), checksum=args[0].double().sum().item())
                    handle.remove()

                handle = model.register_forward_pre_hook(hook)

            cfg = TrainConfig(**cfg_kwargs, sync_stats=sync)
            result = train(cfg, Path(out_dir) / name, progress=False, on_batch=first_batch)
            Path(out_dir, f"{name}_rank{rank}.json").write_text(
                json.dumps({"result": result, "first_batch": seen}))
    finally:
        dist.destroy_process_group()
