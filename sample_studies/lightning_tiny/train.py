"""A Lightning run: a small MLP classifier on generated data, reporting through PlaybookLogger and
PlaybookCallback.

    python train.py --lr 0.05 --width 64 --steps 80          # alone
    playbook-runner run study.toml                          # under the runner

The data is generated here: 16-dimensional Gaussian clusters (8 classes, 3 clusters each,
overlapping), so a wider network has something to gain. SGD with momentum and a cosine
schedule stepped every optimizer step; gradients clipped at --grad-clip (the logged norm is
the unclipped one). Uses a GPU when one is visible, else the CPU.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))  # the repo's runner

DIM, CLASSES, CLUSTERS = 16, 8, 3


def clusters(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n points around fixed cluster centres (the same centres for every seed)."""
    centres = torch.randn(CLASSES * CLUSTERS, DIM, generator=torch.Generator().manual_seed(1234)) * 1.2
    g = torch.Generator().manual_seed(seed)
    which = torch.randint(len(centres), (n,), generator=g)
    return centres[which] + torch.randn(n, DIM, generator=g), which % CLASSES


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--grad-clip", type=float, default=5.0)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=80)
    p.add_argument("--eval-every", type=int, default=20)
    p.add_argument("--train-size", type=int, default=4096)
    p.add_argument("--val-size", type=int, default=1024)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="checkpoint folder (default: a temporary one)")
    return p.parse_args()


def main() -> int:
    args = parse_args()
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint

    from runner.integrations.lightning import PlaybookCallback, PlaybookLogger

    class Classifier(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(DIM, args.width), torch.nn.ReLU(),
                                           torch.nn.Linear(args.width, args.width), torch.nn.ReLU(),
                                           torch.nn.Linear(args.width, CLASSES))

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = torch.nn.functional.cross_entropy(self.net(x), y)
            self.log("train_loss", loss)
            return loss

        def validation_step(self, batch, batch_idx):
            x, y = batch
            logits = self.net(x)
            self.log("val_loss", torch.nn.functional.cross_entropy(logits, y))
            self.log("val_error", (logits.argmax(1) != y).float().mean())

        def configure_optimizers(self):
            opt = torch.optim.SGD(self.parameters(), lr=args.lr, momentum=args.momentum)
            cosine = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.steps)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": cosine, "interval": "step"}}

    torch.set_num_threads(1)
    L.seed_everything(args.seed, verbose=False)
    train = torch.utils.data.TensorDataset(*clusters(args.train_size, 1))
    val = torch.utils.data.TensorDataset(*clusters(args.val_size, 2))
    out = args.out or tempfile.mkdtemp(prefix="lightning_tiny-")
    # Saved after each validation that improves val_error: the runner hears of each one.
    checkpoints = ModelCheckpoint(dirpath=os.path.join(out, "checkpoints"), monitor="val_error", mode="min",
                                  save_top_k=1)
    trainer = L.Trainer(
        max_steps=args.steps, val_check_interval=args.eval_every, check_val_every_n_epoch=None,
        gradient_clip_val=args.grad_clip, log_every_n_steps=1,
        logger=PlaybookLogger(objective="val_error"), callbacks=[PlaybookCallback(), checkpoints],
        accelerator="auto", devices=1, enable_progress_bar=False, enable_model_summary=False,
        num_sanity_val_steps=0, default_root_dir=out,
    )
    trainer.fit(Classifier(),
                torch.utils.data.DataLoader(train, batch_size=args.batch_size, shuffle=True),
                torch.utils.data.DataLoader(val, batch_size=512))
    final = trainer.callback_metrics.get("val_error")
    final = float(final) if final is not None else float("nan")
    print(f"step {trainer.global_step:5d} val_error {final:.4f}")
    loss = trainer.callback_metrics.get("train_loss")
    return 1 if loss is not None and not math.isfinite(float(loss)) else 0


if __name__ == "__main__":
    sys.exit(main())
