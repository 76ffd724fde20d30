"""Train the tiny.en command-speech LoRA adapter (rebuilds src/mmchat_ros/backends/adapters/tiny_en_commands.npz).

Three steps; the first two run here (they need the project's venv), the third on a GPU machine with PyTorch:

    python train/asr_adapter/make_data.py                    # speech: .data/asr_adapter/{train,val}.npz
    python train/asr_adapter/train.py prepare                # + tokens.json and base.npz (tiny.en, int8 rows)
    python train/asr_adapter/train.py train --out DIR        # on the GPU: DIR/tiny_en_commands.npz + log

``prepare`` tokenises every transcript with the recognizer's own tokenizer and prompt (the command-vocabulary
context before <|startoftranscript|>, as ``WhisperRecognizer`` decodes), and stores the shipped tiny.en weights
with each large matrix quantised to int8 per row (the model runs int8 at inference too; it halves what travels).
``train`` fits LoRA deltas (rank --rank) on every linear layer of encoder and decoder with the base frozen, the loss
on the transcript tokens only, light SpecAugment; it reports validation loss and greedy word error before and
after on held-out voices. No hub, no download: everything comes from the installed packages.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from features import window_from_stored  # noqa: E402  (a script beside this one, not a package)

REPO = HERE.parents[1]
DATA = REPO / ".data" / "asr_adapter"   # --data changes it
QUANTISE_ABOVE = 100_000   # elements: matrices this large travel as int8 rows + scales


def mel_of(pack, index: int) -> np.ndarray:
    """The full (80, window_frames) features of utterance ``index``."""
    start, end = int(pack["offsets"][index]), int(pack["offsets"][index + 1])
    return window_from_stored(pack["mel"][start:end], float(pack["floor"][index]), int(pack["window_frames"][index]))


def words(text: str) -> list[str]:
    return [w for w in "".join(c.lower() if c.isalnum() or c in " '" else " " for c in text).split() if w]


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    ref, hyp = words(reference), words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        previous, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (r != h))
    return row[-1], len(ref)


# ------------------------------------------------------------------------------------------------ prepare (here)
def prepare(args) -> None:
    sys.path.insert(0, str(REPO / "src"))
    from mmchat_ros.backends.asr import WhisperRecognizer
    from mmchat_ros.backends.ct2_weights import read_model

    recognizer = WhisperRecognizer("tiny.en")
    tokenizer = recognizer._tokenizer("en")
    prompt = [tokenizer.sot_prev, *recognizer.context_tokens, *tokenizer.sot_sequence, tokenizer.no_timestamps]
    tokens = {"prompt": prompt, "eot": tokenizer.eot, "suppress": recognizer.suppress_tokens,
              "max_length": recognizer.model.max_length}
    for split in ("train", "val"):
        texts = np.load(DATA / f"{split}.npz")["texts"]
        tokens[split] = [tokenizer.encode(" " + str(text).strip()) for text in texts]
    (DATA / "tokens.json").write_text(json.dumps(tokens))
    model = read_model(recognizer.model_path)
    base = {}
    for name, value in model.variables.items():
        if value.dtype == np.float16 and value.ndim == 2 and value.size > QUANTISE_ABOVE:
            rows = value.astype(np.float32)
            scale = np.maximum(np.abs(rows).max(axis=1, keepdims=True), 1e-8) / 127.0
            base[name + "::q"] = np.round(rows / scale).astype(np.int8)
            base[name + "::s"] = scale.astype(np.float32)
        else:
            base[name] = value
    np.savez_compressed(DATA / "base.npz", **base)
    print(f"prepared: prompt {len(prompt)} tokens; train {len(tokens['train'])}, val {len(tokens['val'])}; "
          f"base.npz {(DATA / 'base.npz').stat().st_size / 1e6:.1f} MB")


# ---------------------------------------------------------------------------------------------- train (on a GPU)
def load_base(path: Path) -> dict[str, np.ndarray]:
    packed = np.load(path)
    variables = {}
    for key in packed.files:
        if key.endswith("::s"):
            continue
        if key.endswith("::q"):
            name = key[:-3]
            variables[name] = packed[key].astype(np.float32) * packed[name + "::s"]
        else:
            variables[key] = packed[key]
    return variables


def train(args) -> None:
    import torch
    import torch.nn.functional as F
    from whisper_torch import WhisperCt2

    torch.manual_seed(args.seed)
    random.seed(args.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokens = json.loads((DATA / "tokens.json").read_text())
    packs = {split: dict(np.load(DATA / f"{split}.npz")) for split in ("train", "val")}
    model = WhisperCt2(load_base(DATA / "base.npz"), rank=args.rank, alpha=args.alpha,
                       scope=tuple(args.scope.split(","))).to(device)
    prompt, eot = tokens["prompt"], tokens["eot"]

    def batch(split: str, indices: list[int], augment: bool):
        mels = np.stack([mel_of(packs[split], i) for i in indices])
        if augment:   # SpecAugment, light: two frequency bands and two time spans set to the utterance's mean
            for mel in mels:
                for _ in range(2):
                    f0, width = random.randrange(80), random.randrange(1, 9)
                    mel[f0:f0 + width] = mel.mean()
                    t0, span = random.randrange(mel.shape[1] // 4), random.randrange(1, 12)
                    mel[:, t0:t0 + span] = mel.mean()
        sequences = [prompt + tokens[split][i] + [eot] for i in indices]
        length = max(map(len, sequences))
        inputs = torch.full((len(indices), length - 1), eot, dtype=torch.long)
        targets = torch.full((len(indices), length - 1), -100, dtype=torch.long)
        for row, sequence in enumerate(sequences):
            inputs[row, : len(sequence) - 1] = torch.tensor(sequence[:-1])
            targets[row, len(prompt) - 1: len(sequence) - 1] = torch.tensor(sequence[len(prompt):])
        return torch.from_numpy(mels).to(device), inputs.to(device), targets.to(device)

    def by_window(split: str) -> dict[int, list[int]]:
        groups: dict[int, list[int]] = {}
        for i, frames in enumerate(packs[split]["window_frames"]):
            groups.setdefault(int(frames), []).append(i)
        return groups

    def loss_of(mel, inputs, targets):
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=device == "cuda"):
            logits = model.decode(inputs, model.encode(mel))
        return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100)

    @torch.no_grad()
    def evaluate(limit: int) -> dict:
        model.eval()
        losses = []
        for frames, indices in by_window("val").items():
            for start in range(0, len(indices), args.batch):
                losses.append(float(loss_of(*batch("val", indices[start:start + args.batch], False))))
        counts: dict[str, list[int]] = {}   # engine → [word errors, words]
        samples = []
        for i in range(min(limit, len(packs["val"]["texts"]))):
            mel = torch.from_numpy(mel_of(packs["val"], i)[None]).to(device)
            hypothesis = model.greedy(mel, prompt, eot, suppress=tokens["suppress"])
            text = decode_text(hypothesis)
            e, n = word_errors(str(packs["val"]["texts"][i]), text)
            voice = str(packs["val"]["voices"][i])
            for engine in ("all", voice.split(":")[0] if ":" in voice.split()[0] else "espeak"):
                counts.setdefault(engine, [0, 0])
                counts[engine][0] += e
                counts[engine][1] += n
            if len(samples) < 8 and e:
                samples.append((str(packs["val"]["texts"][i]), text))
        model.train()
        return {"val_loss": sum(losses) / len(losses), "val_wer": counts["all"][0] / max(1, counts["all"][1]),
                "val_wer_by_engine": {k: round(e / max(1, n), 4) for k, (e, n) in counts.items()}, "errors": samples}

    from tokenizers import Tokenizer
    hf_tokenizer = Tokenizer.from_file(str(DATA / "tokenizer.json"))

    def decode_text(ids: list[int]) -> str:
        return hf_tokenizer.decode([t for t in ids if t < eot]).strip()

    before = evaluate(args.eval_utterances)
    print(f"before: val loss {before['val_loss']:.4f}, greedy WER {before['val_wer_by_engine']}", flush=True)
    for reference, hypothesis in before["errors"]:
        print(f"   ref: {reference}\n   hyp: {hypothesis}")
    parameters = [p for p in model.parameters() if p.requires_grad]
    print(f"trainable parameters: {sum(p.numel() for p in parameters)}", flush=True)
    optimiser = torch.optim.AdamW(parameters, lr=args.lr, weight_decay=0.01)
    groups = by_window("train")
    steps_per_epoch = sum(math.ceil(len(v) / args.batch) for v in groups.values())
    total_steps = steps_per_epoch * args.epochs
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=args.lr, total_steps=total_steps,
                                                   pct_start=0.1)
    started, step = time.time(), 0
    for epoch in range(args.epochs):
        order = [(frames, indices[s:s + args.batch]) for frames, indices in groups.items()
                 for s in range(0, len(indices), args.batch)]
        for indices in groups.values():
            random.shuffle(indices)
        random.shuffle(order)
        running = []
        for _, indices in order:
            loss = loss_of(*batch("train", indices, True))
            optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(parameters, 1.0)
            optimiser.step()
            schedule.step()
            running.append(float(loss.detach()))
            step += 1
        print(f"epoch {epoch + 1}/{args.epochs}: train loss {sum(running) / len(running):.4f} "
              f"({time.time() - started:.0f} s)", flush=True)
    after = evaluate(args.eval_utterances)
    print(f"after: val loss {after['val_loss']:.4f}, greedy WER {after['val_wer_by_engine']}")
    for reference, hypothesis in after["errors"]:
        print(f"   ref: {reference}\n   hyp: {hypothesis}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / "tiny_en_commands.npz", **model.adapter())
    summary = {"val_loss_before": before["val_loss"], "val_loss_after": after["val_loss"],
               "val_wer_before": before["val_wer_by_engine"], "val_wer_after": after["val_wer_by_engine"], "rank": args.rank,
               "epochs": args.epochs, "lr": args.lr, "scope": args.scope, "train_utterances": len(packs["train"]["texts"]),
               "train_s": round(time.time() - started, 1)}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary))


def main() -> None:
    global DATA
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("prepare")
    run = sub.add_parser("train")
    run.add_argument("--out", required=True)
    run.add_argument("--rank", type=int, default=8)
    run.add_argument("--alpha", type=float, default=16.0)
    run.add_argument("--lr", type=float, default=1e-3)
    run.add_argument("--epochs", type=int, default=4)
    run.add_argument("--batch", type=int, default=32)
    run.add_argument("--seed", type=int, default=1)
    run.add_argument("--scope", default="encoder,decoder", help="where LoRA goes: encoder, decoder or both")
    run.add_argument("--eval-utterances", type=int, default=150)
    for command in (sub.choices["prepare"], run):
        command.add_argument("--data", default=str(DATA), help="where make_data.py wrote its files")
    args = parser.parse_args()
    DATA = Path(args.data)
    prepare(args) if args.command == "prepare" else train(args)


if __name__ == "__main__":
    main()
