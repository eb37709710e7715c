"""A deterministic, download-free character-level corpus with structure at several ranges.

Short stories from a small grammar: word spelling (local structure), sentence
templates (mid range), and names/objects that must be copied from earlier in
the same story ("alice gave the key to bob. bob thanked alice.") for the long
range, which only attention can model. Depends only on `seed`.
"""

from __future__ import annotations

import random

NAMES = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"]
OBJECTS = ["apple", "book", "coin", "key", "lamp", "map", "pen", "ring", "cup", "hat"]
PLACES = ["garden", "kitchen", "library", "market", "office", "park", "river", "school"]
NUMBERS = ["two", "three", "four", "five", "six", "seven"]


def story(rng: random.Random) -> str:
    a, b = rng.sample(NAMES, 2)
    obj, other = rng.sample(OBJECTS, 2)
    place = rng.choice(PLACES)
    sentences = [f"{a} went to the {place}.", f"{a} met {b} there."]
    for _ in range(rng.randint(1, 3)):
        kind = rng.randrange(4)
        if kind == 0:
            sentences.append(f"{a} gave the {obj} to {b}. {b} thanked {a}.")
        elif kind == 1:
            sentences.append(f"{b} has {rng.choice(NUMBERS)} {other}s.")
        elif kind == 2:
            sentences.append(f"{b} asked {a} for the {obj}. {a} said no.")
        else:
            sentences.append(f"{a} and {b} left the {place}.")
    return " ".join(sentences) + "\n"


def corpus(chars: int, seed: int) -> str:
    rng = random.Random(seed)
    parts, n = [], 0
    while n < chars:
        parts.append(story(rng))
        n += len(parts[-1])
    return "".join(parts)[:chars]


# Every character the grammar can emit, so train and validation share one vocabulary.
VOCAB = sorted(set("abcdefghijklmnopqrstuvwxyz .\n"))
STOI = {c: i for i, c in enumerate(VOCAB)}


def encode(text: str) -> list[int]:
    return [STOI[c] for c in text]


if __name__ == "__main__":
    print(corpus(600, seed=0))
