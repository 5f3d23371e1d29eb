"""The five criteria, each a pure function of the data and its unit-vector embeddings.

Thresholds (cosine similarity of all-MiniLM-L6-v2 vectors):
- near duplicate: >= 0.97 (distinct Banking77 messages asking the same thing reach 0.95-0.97);
- covered test input: its nearest training input >= 0.6;
- off-topic: its mean similarity to its 5 nearest rows is below 0.25 (on the demo
  slice clean rows sit at 0.33 and above, save one odd row at 0.08; unrelated
  questions planted into it scored 0.08-0.19), or its input is empty boilerplate.
Texts that differ only in case, spacing or punctuation count as duplicates too.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import asdict, dataclass, field

import numpy as np

from adaptlab.data import Dataset

NEAR_DUPLICATE = 0.97
CANDIDATE = 0.85  # pairs this similar are also compared by character 4-gram overlap
NGRAM_OVERLAP = 0.8
NEIGHBOURS = 5  # a label disagreeing with at least 4 of its 5 nearest rows, all on one other label, is suspect
COVERED = 0.6
OFF_TOPIC = 0.25
BOILERPLATE = re.compile(r"^\W*(test|asdf+|lorem ipsum.*|n/?a|none|null|todo|xxx+|\.+|-+)?\W*$", re.IGNORECASE)


@dataclass(frozen=True)
class Flag:
    """A row that cost points: its 1-based line (in train unless `file` says test) and why."""

    line: int | None
    reason: str
    file: str = "train"


@dataclass
class Criterion:
    name: str
    score: float | None  # 0-100; None when it cannot be measured (e.g. no test set)
    flagged: list[Flag]
    hint: str
    stats: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "score": self.score,
            "flagged": [asdict(f) for f in self.flagged],
            "hint": self.hint,
            "stats": self.stats,
        }


def normalise_text(text: str) -> str:
    """Case, spacing and punctuation aside."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def flagged_score(flagged_rows: int, total: int) -> float:
    return round(100 * (1 - flagged_rows / total), 1) if total else 100.0


def representative(
    train: Dataset, vectors: np.ndarray, test: Dataset | None, test_vectors: np.ndarray | None, labelled: bool = True
) -> Criterion:
    """How well train covers the test inputs: the share whose nearest training input is close (classify:
    and every test label has training examples; a generate task's answers are new text by design)."""
    if test is None or not len(test):
        return Criterion(
            "representative", None, [], "no test set or production sample given: pass --test to measure coverage"
        )
    nearest = (test_vectors @ vectors.T).max(axis=1)
    flags = [
        Flag(e.line, f"test row's nearest training input has similarity {s:.2f} (< {COVERED})", "test")
        for e, s in zip(test, nearest)
        if s < COVERED
    ]
    covered = float(np.mean(nearest >= COVERED))
    if not labelled:
        return Criterion(
            "representative",
            round(100 * covered, 1),
            flags,
            "add training examples like the flagged test rows",
            {"covered_share": round(covered, 3)},
        )
    train_labels = set(train.outputs)
    missing = sorted({e.output for e in test} - train_labels)
    flags += [
        Flag(e.line, f"test label {e.output!r} has no training example", "test") for e in test if e.output in missing
    ]
    per_label = {}
    for label in sorted({e.output for e in test}):
        rows = [s for e, s in zip(test, nearest) if e.output == label]
        per_label[label] = round(float(np.mean([s >= COVERED for s in rows])), 3)
    hint = "add training examples like the flagged test rows" + (
        f"; add examples for {', '.join(missing)}" if missing else ""
    )
    return Criterion(
        "representative",
        round(100 * covered * (1 - len(missing) / max(1, len(per_label))), 1),
        flags,
        hint,
        {"covered_share": round(covered, 3), "per_label_coverage": per_label, "missing_labels": missing},
    )


def _grams(text: str, n: int = 4) -> set[str]:
    t = normalise_text(text)
    return {t[i : i + n] for i in range(max(1, len(t) - n + 1))}


def close_pairs(sims: np.ndarray, texts: list[str]) -> dict[int, list[int]]:
    """For each row i, the earlier rows j < i that nearly duplicate it: cosine >= 0.97, or
    cosine >= 0.85 with character 4-gram overlap (Jaccard) >= 0.8."""
    out: dict[int, list[int]] = {}
    for i, j in np.argwhere(np.tril(sims >= CANDIDATE, k=-1)):
        i, j = int(i), int(j)
        if sims[i, j] >= NEAR_DUPLICATE:
            out.setdefault(i, []).append(j)
            continue
        a, b = _grams(texts[i]), _grams(texts[j])
        if len(a & b) >= NGRAM_OVERLAP * len(a | b):
            out.setdefault(i, []).append(j)
    return out


def diverse(train: Dataset, sims: np.ndarray, near: dict[int, list[int]]) -> Criterion:
    """Exact and near duplicates (same output), and how spread each label's inputs are."""
    flags = []
    seen: dict[tuple[str, str], int | None] = {}
    for i, e in enumerate(train):
        key = (normalise_text(e.input), e.output)
        if key in seen:
            flags.append(Flag(e.line, f"exact duplicate of line {seen[key]}"))
            continue
        seen[key] = e.line
        earlier = [j for j in near.get(i, []) if train.examples[j].output == e.output]
        if earlier:
            flags.append(
                Flag(
                    e.line,
                    f"near duplicate of line {train.examples[earlier[0]].line} (cosine {sims[i, earlier[0]]:.2f})",
                )
            )
    spread = {}
    for label in sorted(set(train.outputs)):
        idx = [i for i, e in enumerate(train) if e.output == label]
        if len(idx) > 1:
            block = sims[np.ix_(idx, idx)]
            spread[label] = round(
                float((block.sum() - len(idx)) / (len(idx) * (len(idx) - 1))), 3
            )  # mean pairwise similarity
    return Criterion(
        "diverse",
        flagged_score(len(flags), len(train)),
        flags,
        "remove duplicates; add differently worded examples to labels with high within-label similarity",
        {"within_label_similarity": spread},
    )


def balanced(train: Dataset, labelled: bool) -> Criterion:
    """Label distribution (classify) or output-length spread (generate, qa)."""
    if not labelled:
        lengths = np.array([len(e.output) for e in train], dtype=float)
        z = (lengths - lengths.mean()) / (lengths.std() or 1.0)
        flags = [
            Flag(e.line, f"output length {int(n)} is {zz:+.1f} standard deviations from the mean")
            for e, n, zz in zip(train, lengths, z)
            if abs(zz) > 3
        ]
        cv = float(lengths.std() / lengths.mean()) if lengths.mean() else 0.0
        return Criterion(
            "balanced",
            flagged_score(len(flags), len(train)),
            flags,
            "check the flagged outputs' length and shape",
            {"output_length_mean": round(float(lengths.mean()), 1), "output_length_cv": round(cv, 3)},
        )
    counts = Counter(train.outputs)
    k, n = len(counts), len(train)
    entropy = -sum(c / n * math.log(c / n) for c in counts.values())
    normalised = entropy / math.log(k) if k > 1 else 1.0
    mean = n / k
    starved = {label for label, c in counts.items() if c < 0.5 * mean}
    flags = [
        Flag(e.line, f"label {e.output!r} has {counts[e.output]} examples, under half the mean of {mean:.0f}")
        for e in train
        if e.output in starved
    ]
    stats = {
        "label_counts": dict(sorted(counts.items())),
        "imbalance_ratio": round(max(counts.values()) / min(counts.values()), 2),
        "normalised_entropy": round(normalised, 3),
    }
    hint = f"add examples for {', '.join(sorted(starved))}" if starved else "the labels are balanced"
    return Criterion("balanced", round(100 * normalised * (1 - len(starved) / k), 1), flags, hint, stats)


def consistent(
    train: Dataset,
    sims: np.ndarray,
    near: dict[int, list[int]],
    labelled: bool,
    keys: list[str] | None = None,
    groups: list | None = None,
) -> Criterion:
    """Same or near-identical inputs with different outputs; JSON that does not parse; label spelling variants.

    `keys`: each row's input as identical inputs are compared (default: its text, case, spacing and punctuation
    aside); `groups`: rows of one group (a conversation's turns) are not each other's neighbours."""
    flags: dict[int | None, str] = {}  # line -> why (an Example's line is None when it was made in memory)
    # In generation a small change of input can rightly change the output ("order 9" vs
    # "order 19"), so there only identical inputs count; in classification near-identical ones do too.
    pairs = near if labelled else {}
    keys = keys if keys is not None else [normalise_text(e.input) for e in train]
    by_text: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        by_text.setdefault(key, []).append(i)
    for i, e in enumerate(train):
        for j in set(pairs.get(i, [])) | {j for j in by_text[keys[i]] if j < i}:
            a, b = e, train.examples[j]
            if a.output != b.output:
                flags.setdefault(a.line, f"same input as line {b.line} but output {a.output!r} vs {b.output!r}")
                flags.setdefault(b.line, f"same input as line {a.line} but output {b.output!r} vs {a.output!r}")
    if labelled:
        for line, reason in _neighbour_disagreements(train, sims, groups):
            flags.setdefault(line, reason)
    outputs = train.outputs
    if sum(o.lstrip().startswith(("{", "[")) for o in outputs) > len(outputs) / 2:
        for e in train:
            try:
                json.loads(e.output)
            except ValueError:
                flags.setdefault(e.line, "output is not valid JSON, unlike most outputs")
    if labelled:
        variants: dict[str, list[str]] = {}
        for label in set(outputs):
            variants.setdefault(re.sub(r"[\s_\-]+", "", label.lower()), []).append(label)
        counts = Counter(outputs)
        for group in variants.values():
            if len(group) > 1:
                main = max(group, key=lambda g: counts[g])
                for e in train:
                    if e.output in group and e.output != main:
                        flags.setdefault(e.line, f"label {e.output!r} looks like a spelling variant of {main!r}")
    found = [Flag(line, reason) for line, reason in sorted(flags.items())]
    return Criterion(
        "consistent",
        flagged_score(len(found), len(train)),
        found,
        "give identical inputs one output; fix misspelled labels and malformed JSON",
    )


def _neighbour_disagreements(
    train: Dataset, sims: np.ndarray, groups: list | None = None
) -> list[tuple[int | None, str]]:
    """Rows whose label differs from the one shared by at least 4 of their 5 nearest rows (outside their own group)."""
    k = min(NEIGHBOURS, len(train) - 1)
    if k < NEIGHBOURS:
        return []
    others = sims.copy()
    np.fill_diagonal(others, -1.0)
    if groups is not None:
        group = np.asarray(groups)
        others[group[:, None] == group[None, :]] = -1.0
    nearest = np.argpartition(others, -k, axis=1)[:, -k:]
    outputs = train.outputs
    found = []
    for i, row in enumerate(nearest):
        label, count = Counter(outputs[j] for j in row).most_common(1)[0]
        if label != outputs[i] and count >= k - 1:
            found.append(
                (train.examples[i].line, f"labelled {outputs[i]!r} but {count} of its {k} nearest rows are {label!r}")
            )
    return found


def relevant(train: Dataset, vectors: np.ndarray, sims: np.ndarray, instruction: str | None, embedder) -> Criterion:
    """Rows far from the bulk of the data (and from the instruction, when given), and empty boilerplate."""
    others = sims.copy()
    np.fill_diagonal(others, -1.0)
    k = min(5, len(train) - 1)
    closeness = np.partition(others, -k, axis=1)[:, -k:].mean(axis=1) if k > 0 else np.ones(len(train))
    flags = []
    for e, c in zip(train, closeness):
        if BOILERPLATE.match(e.input):
            flags.append(Flag(e.line, "input is empty or boilerplate"))
        elif c < OFF_TOPIC:
            flags.append(
                Flag(e.line, f"far from the rest of the data (mean similarity to its {k} nearest rows {c:.2f})")
            )
    stats = {"mean_neighbour_similarity": round(float(closeness.mean()), 3)}
    if instruction and embedder is not None:
        to_task = vectors @ embedder.encode([instruction])[0]
        stats["mean_similarity_to_instruction"] = round(float(to_task.mean()), 3)
    return Criterion(
        "relevant",
        flagged_score(len(flags), len(train)),
        flags,
        "remove or relabel rows that do not belong to this task",
        stats,
    )
