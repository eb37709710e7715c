"""A Hugging Face Trainer run on a tiny randomly initialised GPT-2, reporting through PlaybookCallback.

    python train.py --lr 3e-3 --n-layer 2 --steps 60        # alone: prints Trainer's logs
    playbook-runner run study.toml                          # under the runner

No download: the model is built from a GPT2Config (random weights) and the data
is generated here: token sequences from a fixed random Markov chain (each token
depends on the previous one), so the loss has somewhere to go, from log(vocab)
towards the chain's entropy. Uses a GPU when one is visible, else the CPU.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))  # the repo's runner

VOCAB = 32
SEQ_LEN = 32


def markov_tokens(n: int, seed: int) -> torch.Tensor:
    """n sequences from one fixed sparse Markov chain (the same chain for every seed)."""
    chain = torch.Generator().manual_seed(1234)
    logits = torch.randn(VOCAB, VOCAB, generator=chain) * 3.0  # peaked rows: a few likely successors
    probs = torch.softmax(logits, dim=1)
    g = torch.Generator().manual_seed(seed)
    out = torch.empty(n, SEQ_LEN, dtype=torch.long)
    out[:, 0] = torch.randint(VOCAB, (n,), generator=g)
    for t in range(1, SEQ_LEN):
        out[:, t] = torch.multinomial(probs[out[:, t - 1]], 1, generator=g).squeeze(1)
    return out


class Sequences(torch.utils.data.Dataset):
    def __init__(self, ids: torch.Tensor) -> None:
        self.ids = ids

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "labels": self.ids[i]}  # the model shifts labels itself


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--n-layer", type=int, default=2)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--warmup-steps", type=int, default=5)
    p.add_argument("--max-grad-norm", type=float, default=1.0, help="clipping threshold; 0: no clipping")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--eval-every", type=int, default=20)
    p.add_argument("--train-size", type=int, default=2048)
    p.add_argument("--val-size", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="checkpoint folder (default: a temporary one)")
    return p.parse_args()


def main() -> int:
    args = parse_args()
    from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments

    from runner.integrations.hf import PlaybookCallback

    torch.set_num_threads(1)
    config = GPT2Config(vocab_size=VOCAB, n_positions=SEQ_LEN, n_embd=args.width, n_layer=args.n_layer,
                        n_head=2, n_inner=2 * args.width, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                        bos_token_id=0, eos_token_id=0)
    torch.manual_seed(args.seed)
    model = GPT2LMHeadModel(config)
    out = args.out or tempfile.mkdtemp(prefix="hf_tiny-")
    training = TrainingArguments(
        output_dir=os.path.join(out, "checkpoints"),
        max_steps=args.steps, per_device_train_batch_size=args.batch_size, per_device_eval_batch_size=128,
        learning_rate=args.lr, weight_decay=args.weight_decay, warmup_steps=args.warmup_steps,
        lr_scheduler_type="cosine", max_grad_norm=args.max_grad_norm,
        logging_steps=1,  # the playbook reads train_loss and grad_norm every step
        eval_strategy="steps", eval_steps=args.eval_every,
        save_strategy="steps", save_steps=args.eval_every, save_total_limit=1, save_only_model=True,
        metric_for_best_model="eval_loss", greater_is_better=False,
        report_to="none", disable_tqdm=True, seed=args.seed, dataloader_num_workers=0,
        use_cpu=not torch.cuda.is_available(),
    )
    trainer = Trainer(model=model, args=training, train_dataset=Sequences(markov_tokens(args.train_size, 1)),
                      eval_dataset=Sequences(markov_tokens(args.val_size, 2)), callbacks=[PlaybookCallback()])
    trainer.train()
    evals = [h["eval_loss"] for h in trainer.state.log_history if "eval_loss" in h]
    if evals and not math.isfinite(evals[-1]):
        print(f"diverged: eval_loss {evals[-1]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
