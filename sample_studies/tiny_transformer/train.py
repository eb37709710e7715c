"""Train a tiny post-LN transformer language model on generated stories (textgen.py).

    python train.py --lr 0.02 --warmup-steps 20 --steps 200

Schedule: linear warmup 0 -> lr over --warmup-steps, then constant. Post-LN
(x = LayerNorm(x + f(x))) trained with Adam at a high learning rate and no
warmup is the classic unstable recipe: the first few full-size Adam steps make
the residual branches dwarf the skip path and the network never recovers.
README.md has the measurements. Runs alone too: outside the runner the
Reporter is a no-op.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

try:
    from runner.report import Reporter
    from runner.torch_helpers import BestCheckpoint, grad_norm
except ImportError:  # playbook-tui not installed in this interpreter: use the repo checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from runner.report import Reporter
    from runner.torch_helpers import BestCheckpoint, grad_norm

import textgen

DATA_SEED, VAL_SEED = 0, 1  # fixed: every trial sees the same text; --seed varies init and batches


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lr", type=float, default=0.01, help="Adam learning rate after warmup")
    p.add_argument("--warmup-steps", type=int, default=0, help="linear warmup 0 -> lr")
    p.add_argument("--steps", type=int, default=200, help="training steps (max_train_steps)")
    p.add_argument("--clip", type=float, default=None, help="clip the gradient's L2 norm to this")
    p.add_argument("--eval-every", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seq-len", type=int, default=32)
    p.add_argument("--d-model", type=int, default=64)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--norm", choices=["post", "pre"], default="post",
                   help="post: LN(x + f(x)) (needs warmup at high lr); pre: x + f(LN(x))")
    p.add_argument("--init-std", type=float, default=0.02,
                   help="std of the weight matrices and embeddings (biases keep PyTorch's "
                        "default); 0 = PyTorch's default init for all")
    p.add_argument("--beta2", type=float, default=0.98,
                   help="Adam beta2 (0.98 as in the original post-LN transformer)")
    p.add_argument("--out", type=Path, default=None,
                   help="trial directory: save the best state_dict there and mark it as a checkpoint")
    p.add_argument("--threads", type=int, default=1, help="CPU threads (ignored on CUDA)")
    return p.parse_args(argv)


class Block(nn.Module):
    def __init__(self, d: int, heads: int, post_ln: bool):
        super().__init__()
        self.heads, self.post_ln = heads, post_ln
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.ff = nn.Sequential(nn.Linear(d, 4 * d), nn.ReLU(), nn.Linear(4 * d, d))
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)

    def attn(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(b, t, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.post_ln:
            x = self.ln1(x + self.attn(x))
            return self.ln2(x + self.ff(x))
        x = x + self.attn(self.ln1(x))
        return x + self.ff(self.ln2(x))


class TinyLM(nn.Module):
    def __init__(self, vocab: int, seq_len: int, d: int, layers: int, heads: int, post_ln: bool,
                 init_std: float = 0.0):
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, d), nn.Embedding(seq_len, d)
        self.blocks = nn.ModuleList(Block(d, heads, post_ln) for _ in range(layers))
        # Pre-LN leaves the residual stream unnormalized: it needs a final LayerNorm.
        self.ln_f = nn.Identity() if post_ln else nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab)
        if init_std > 0:
            # The common `p.dim() > 1` idiom: weight matrices and embeddings N(0, init_std)
            # (GPT-2's 0.02), biases and LayerNorms keep PyTorch's defaults. Weights this
            # small make an early full-size Adam step (about lr per weight) a big change.
            for p in self.parameters():
                if p.dim() > 1:
                    nn.init.normal_(p, std=init_std)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.tok(idx) + self.pos(torch.arange(idx.shape[1], device=idx.device))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))


class Adam:
    """torch.optim.Adam(betas=(0.9, beta2), eps=1e-8), step for step.

    Written out because constructing any torch.optim optimizer imports
    torch._dynamo (about 1.3 s on a CPU), a large part of this whole run.
    """

    def __init__(self, params: list[nn.Parameter], beta2: float, beta1: float = 0.9, eps: float = 1e-8):
        self.params, self.beta1, self.beta2, self.eps = params, beta1, beta2, eps
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]
        self.t = 0

    @torch.no_grad()
    def step(self, lr: float) -> None:
        # Multi-tensor (_foreach) ops, like torch.optim's default path: one call per op for all
        # tensors instead of a Python loop over them (about 1 ms a step less here).
        self.t += 1
        grads = [p.grad for p in self.params]
        torch._foreach_lerp_(self.m, grads, 1 - self.beta1)
        torch._foreach_mul_(self.v, self.beta2)
        torch._foreach_addcmul_(self.v, grads, grads, 1 - self.beta2)
        denom = torch._foreach_div(self.v, 1 - self.beta2 ** self.t)
        torch._foreach_sqrt_(denom)
        torch._foreach_add_(denom, self.eps)
        torch._foreach_addcdiv_(self.params, self.m, denom, -lr / (1 - self.beta1 ** self.t))


def lr_at(step: int, lr: float, warmup: int) -> float:
    """Linear warmup from 0 to `lr` over `warmup` steps (step 1 gets lr/warmup), then constant."""
    return lr * min(1.0, step / warmup) if warmup > 0 else lr


def batch(data: torch.Tensor, size: int, seq_len: int, gen: torch.Generator):
    """`size` random windows: inputs and the next character at each position."""
    starts = torch.randint(0, len(data) - seq_len, (size, 1), generator=gen)
    windows = data[starts + torch.arange(seq_len + 1)]
    return windows[:, :-1], windows[:, 1:]


@torch.no_grad()
def evaluate(model, val_x: torch.Tensor, val_y: torch.Tensor) -> float:
    model.eval()
    loss = F.cross_entropy(model(val_x).flatten(0, 1), val_y.flatten()).item()
    model.train()
    return loss


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    report = Reporter()

    train_data = torch.tensor(textgen.encode(textgen.corpus(200_000, DATA_SEED)))
    val_data = torch.tensor(textgen.encode(textgen.corpus(20_000, VAL_SEED)))
    # A fixed validation set: 128 disjoint windows of held-out stories, the same for every trial.
    n_val = min(128, (len(val_data) - 1) // args.seq_len)
    val = val_data[: n_val * args.seq_len + 1]
    val_x = val[:-1].view(n_val, args.seq_len).to(device)
    val_y = val[1:].view(n_val, args.seq_len).to(device)

    torch.manual_seed(args.seed)
    model = TinyLM(len(textgen.VOCAB), args.seq_len, args.d_model, args.layers, args.heads,
                   post_ln=args.norm == "post", init_std=args.init_std).to(device)
    params = list(model.parameters())
    opt = Adam(params, beta2=args.beta2)
    gen = torch.Generator().manual_seed(args.seed)
    tokens_per_step = args.batch_size * args.seq_len

    checkpoints = BestCheckpoint(args.out, report)
    last = time.perf_counter()
    for step in range(1, args.steps + 1):
        x, y = (t.to(device) for t in batch(train_data, args.batch_size, args.seq_len, gen))
        lr = lr_at(step, args.lr, args.warmup_steps)
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        for p in params:
            p.grad = None
        loss.backward()
        norm = grad_norm(params, clip=args.clip)  # the unclipped norm, clipped if --clip
        opt.step(lr)
        # One sync per step to catch divergence at once; negligible for a model this small.
        loss_value = loss.item()
        now = time.perf_counter()
        report.log(step, train_loss=loss_value, grad_norm=norm, lr=lr,
                   examples_per_s=args.batch_size / max(now - last, 1e-9),
                   tokens_per_s=tokens_per_step / max(now - last, 1e-9))
        last = now
        if not math.isfinite(loss_value):
            # The runner marks the trial diverged from this point; training on is wasted time.
            print(f"diverged: train_loss={loss_value} at step {step} (lr={args.lr:g})", file=sys.stderr)
            report.flush()
            return 1
        if step % args.eval_every == 0 or step == args.steps:
            val_loss = evaluate(model, val_x, val_y)
            report.log(step, val_loss=val_loss)
            checkpoints.offer(step, model, val_loss)
            print(f"step {step:5d}  lr {lr:.2e}  train_loss {loss_value:.4f}  "
                  f"val_loss {val_loss:.4f}  grad_norm {float(norm):.3g}", flush=True)
            last = time.perf_counter()  # eval time is not training throughput
    report.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
