"""`adaptlab init`: one labeled data file in, a ready experiment out (train.jsonl, test.jsonl, experiment.yaml).

The columns are guessed from their names (data/columns.py), the task kind is inferred as compare infers it
(`task.infer_kind`; qa with documents), a seeded test split is carved out (stratified by label where answers are
labels), and the contenders are chosen by their kinds' traits for the rows there are and the machine it runs on.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import shlex
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from adaptlab.config import DEFAULT_MODEL
from adaptlab.data import Dataset, Example, load_dataset
from adaptlab.data.columns import CHAT_FIELD, file_columns, guess_pair
from adaptlab.data.leakage import linked_conversations, rows_by_group
from adaptlab.data.split import MIN_DEV_ROWS, split_dev
from adaptlab.decide.statistics import Z_POWER
from adaptlab.errors import ConfigError, DataError, Problem
from adaptlab.files import write_text_atomic
from adaptlab.task import DEFAULT_ABSTAIN, MAX_LABEL_CHARS, MAX_LABELS, infer_kind
from adaptlab.tasks import task_kind

MIN_TEST_ROWS = MIN_DEV_ROWS  # 8: fewer rows score too coarsely to tell contenders apart at all
# A fine-tune is listed from 80 training rows: its 10% dev split (dev_fraction) then holds the 8 rows it needs to
# choose a checkpoint, and this project's LoRA results came from 72-144 training rows (README: booking-sql, the demo).
FINE_TUNE_MIN_ROWS = 80
CPU_EPOCHS = 2  # the demo's: 2 epochs kept it under 10 minutes on a 2-core CPU (the default 3 on a GPU)
# Seconds per training row per epoch on a 2-core CPU (README): labels 46 s / (144 rows x 2 epochs) = 0.16;
# answers of 56-200 tokens 170 s / (72 rows x 3 epochs) = 0.79.
CPU_SECONDS_PER_ROW = {True: 0.16, False: 0.79}
# Test size: two contenders that disagree on 3 rows in 10 are told apart (80% power, 5% level) when they differ by
# Z_POWER x sqrt(0.3 / rows); under 59 rows that is more than 0.2, too coarse to measure anything.
DISAGREE = 0.3
COARSE, USEFUL = 0.2, 0.1
NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"


@dataclass(frozen=True)
class Entry:
    """One contender of the written experiment: its kind, settings with their comments, and why it is (or is not)
    there."""

    kind: str
    comment: str
    settings: dict[str, tuple] = field(default_factory=dict)  # key -> (value, comment)
    note: str = ""  # a comment line above it
    off: bool = False  # written commented out


@dataclass(frozen=True)
class Initialized:
    """What `init_experiment` found and wrote; the CLI prints it."""

    data: Path
    rows: int
    found: tuple[str, ...]  # the file's columns (a JSONL file's fields)
    columns: tuple[str, str] | None  # (input, output) read; None: chat messages
    columns_from: str  # how they were chosen, in words
    kind: str
    kind_reason: str
    labels: dict[str, tuple[int, int]]  # labelled kinds: label -> (train rows, test rows)
    answer_words: tuple[int, int, int] | None  # free-text kinds: the answers' words, (shortest, median, longest)
    unanswerable: int  # abstaining kinds: rows whose answer is "the documents do not say"
    train: int
    test: int
    split: str  # how the test rows were chosen, in words
    folder: Path
    files: tuple[Path, ...]
    contenders: tuple[str, ...]
    references: tuple[str, ...]
    warnings: list[str] = field(default_factory=list)

    @property
    def command(self) -> str:
        """The command to run next."""
        return f"adaptlab compare {shlex.quote(str(self.folder / 'experiment.yaml'))}"


def init_experiment(
    data: str | Path,
    *,
    docs: str | Path | None = None,
    out: str | Path | None = None,
    test_fraction: float = 0.3,
    seed: int = 0,
    name: str | None = None,
    input_col: str | None = None,
    output_col: str | None = None,
    gpu: bool | None = None,
) -> Initialized:
    """Read `data`, split it, and write train.jsonl, test.jsonl and a commented experiment.yaml into `out` (default: a
    new folder named after the data file, beside it). `gpu` None: whether this machine has one."""
    data = Path(data)
    if not 0 < test_fraction < 1:
        raise ConfigError(f"--test-fraction must be between 0 and 1, got {test_fraction}")
    name = name if name is not None else task_name(data)
    if not re.match(NAME_PATTERN, name):
        raise ConfigError(
            "--name must be lower-case letters, digits, '.', '_' or '-' (up to 64, starting with a "
            f"letter or digit), got {name!r}"
        )
    if docs is not None and not Path(docs).exists():
        raise ConfigError(
            f"--docs {docs}: no such folder or file; pass a folder of .pdf .md .txt .html files, or "
            f'a .jsonl of {{"id", "text"}}'
        )
    folder = _empty_folder(data, out)
    dataset, found, columns, columns_from = read_examples(
        data, input_col, output_col, abstain=DEFAULT_ABSTAIN if docs else None
    )
    kind, reason = _kind(dataset, docs is not None)
    spec = task_kind(kind)
    train, test, notes = split_rows(dataset, test_fraction, seed, spec.labelled)
    if gpu is None:
        from adaptlab.models.device import default_device

        gpu = default_device().startswith("cuda")
    strategies = contenders(spec, docs is not None, len(train), gpu)
    text = experiment_text(
        name=name,
        kind=kind,
        reason=reason,
        instruction=dataset.instruction,
        source=data,
        seed=seed,
        train=len(train),
        test=len(test),
        labels=sorted(set(dataset.outputs)) if spec.labelled else [],
        docs=_relative(docs, folder) if docs else None,
        strategies=strategies,
        references=spec.references,
    )
    _check(text, folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = (folder / "train.jsonl", folder / "test.jsonl", folder / "experiment.yaml")
    _write_split(files, data, dataset.conversations, train, test, spec.abstains)
    write_text_atomic(files[2], text)
    split = _split_words(seed, test_fraction, train, test, conversations=dataset.conversations, labelled=spec.labelled)
    answers = [e.output for e in dataset if not (spec.abstains and e.output == DEFAULT_ABSTAIN)]
    words = sorted(len(a.split()) for a in answers)
    return Initialized(
        data=data,
        rows=len(dataset),
        found=found,
        columns=columns,
        columns_from=columns_from,
        kind=kind,
        kind_reason=reason,
        labels={
            label: (sum(e.output == label for e in train), sum(e.output == label for e in test))
            for label in sorted(set(dataset.outputs))
        }
        if spec.labelled
        else {},
        answer_words=(words[0], words[len(words) // 2], words[-1]) if words and not spec.labelled else None,
        unanswerable=len(dataset) - len(answers),
        train=len(train),
        test=len(test),
        split=split,
        folder=folder,
        files=files,
        contenders=tuple(s.kind for s in strategies if not s.off),
        references=spec.references,
        warnings=dataset.warnings[:5]
        + ([f"... and {len(dataset.warnings) - 5} more duplicate rows"] if len(dataset.warnings) > 5 else [])
        + notes
        + _test_size_warning(len(test)),
    )


def _write_split(
    files: tuple[Path, ...], data: Path, conversations: bool, train: list[Example], test: list[Example], abstains: bool
) -> None:
    """Write train.jsonl and test.jsonl (the first two of `files`): a chat file's own lines, else input/output lines."""
    if conversations:  # each conversation's own line, as it is in the data file: it loads back as the same conversation
        lines = source_lines(data)
        write_text_atomic(files[0], _lines_of(train, lines))
        write_text_atomic(files[1], _lines_of(test, lines))
    else:
        write_text_atomic(files[0], _jsonl(train, abstains))
        write_text_atomic(files[1], _jsonl(test, abstains))


def _split_words(
    seed: int, test_fraction: float, train: list[Example], test: list[Example], *, conversations: bool, labelled: bool
) -> str:
    """How the test rows were chosen, in words."""
    if conversations:
        return (
            f"seed {seed}, {test_fraction:g} of the conversations, held out whole "
            f"({len({(e.conversation, e.line) for e in train})} train, "
            f"{len({(e.conversation, e.line) for e in test})} test)" + (", stratified by label" if labelled else "")
        )
    return f"seed {seed}, {test_fraction:g} of the distinct inputs" + (", stratified by label" if labelled else "")


def task_name(data: Path) -> str:
    """A task name from the data file's name: `Support Tickets.csv` -> `support-tickets`."""
    stem = data.stem if data.is_file() else data.name
    return re.sub(r"[^a-z0-9._-]+", "-", stem.lower()).strip("-._")[:64] or "task"


def _empty_folder(data: Path, out: str | Path | None) -> Path:
    folder = Path(out) if out is not None else data.parent / (data.stem if data.suffix else f"{data.name}-experiment")
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        what = (
            "a file"
            if not folder.is_dir()
            else f"not empty ({', '.join(sorted(p.name for p in folder.iterdir())[:5])})"
        )
        raise ConfigError(
            f"{folder} is {what}: adaptlab init writes into a new or empty folder; pass another with "
            "--out, or remove it"
        )
    return folder


def read_examples(data: Path, input_col: str | None, output_col: str | None, abstain: str | None = None):
    """(dataset, the file's columns, (input, output) read or None for chat lines, how they were chosen); a DataError
    naming the columns found when no pair can be guessed or a named one is missing."""
    if not data.exists():
        raise DataError([Problem("file_not_found", str(data), None, None, "no such file", "check the path")])
    found = file_columns(data)
    if not found:  # unreadable: loading it names the problem, with its line
        return load_dataset(data, min_examples=2, abstain=abstain), found, None, "the file's own input/output fields"
    if CHAT_FIELD in found and not (input_col or output_col):
        return (
            load_dataset(data, min_examples=2, abstain=abstain),
            found,
            None,
            "the chat messages: the user message is the input, the last assistant message the output",
        )
    shown = ", ".join(found) or "none could be read"
    for given in (input_col, output_col):
        if given and found and given not in found:
            raise DataError(
                [
                    Problem(
                        "missing_column",
                        str(data),
                        None,
                        given,
                        f"no such column (found: {shown})",
                        "pass one of those with --input-col / --output-col",
                    )
                ]
            )
    pair = guess_pair(found, input_col, output_col)
    if pair is None:
        raise DataError(
            [
                Problem(
                    "unknown_columns",
                    str(data),
                    None,
                    None,
                    f"cannot tell which columns hold the input and the output (found: {shown})",
                    "name them: --input-col COLUMN --output-col COLUMN (e.g. --input-col text --output-col label)",
                )
            ]
        )
    how = "given" if input_col and output_col else "guessed from their names; --input-col / --output-col choose others"
    how = "the file's own fields" if pair == ("input", "output") and not input_col else how
    return load_dataset(data, min_examples=2, input_col=pair[0], output_col=pair[1], abstain=abstain), found, pair, how


def _kind(data: Dataset, documents: bool) -> tuple[str, str]:
    """The task kind compare would infer, and why, in words that show the rule's figures."""
    if documents:
        from adaptlab.runs.prepare import document_kind

        return (
            document_kind().name,
            f"--docs names documents: answers come from them, or {DEFAULT_ABSTAIN!r} where they do not say",
        )
    kind = infer_kind(data)
    counts = Counter(data.outputs)
    distinct, rows = len(counts), len(data)
    long = sum(1 for o in counts if len(o) > MAX_LABEL_CHARS or "\n" in o)
    if task_kind(kind).labelled:
        return (
            kind,
            f"{distinct} distinct outputs over {rows} rows ({rows / distinct:.1f} each on average), "
            f"none over {MAX_LABEL_CHARS} characters or a line: a label set",
        )
    if distinct < 2:
        return kind, "every row has the same output: there is no label set to choose from"
    if long:
        return (
            kind,
            f"{long} of {distinct} distinct outputs are longer than {MAX_LABEL_CHARS} characters or "
            "span lines: free text",
        )
    if distinct > MAX_LABELS:
        return kind, f"{distinct} distinct outputs: more than the {MAX_LABELS} a label set may have"
    return (
        kind,
        f"{distinct} distinct outputs over {rows} rows: too few repeats for a label set (each must "
        "be seen twice on average)",
    )


def split_rows(
    data: Dataset, fraction: float, seed: int, stratify: bool
) -> tuple[list[Example], list[Example], list[str]]:
    """(train, test, notes): a seeded `fraction` of the distinct inputs held out to test on (at least MIN_TEST_ROWS,
    leaving as many to train on), proportionally per label when `stratify`, every label keeping a training row.
    Rows sharing an input (case and spacing aside) stay on one side: compare refuses a test input seen in training.
    Conversations are held out whole (`_split_conversations`): no turn of a test conversation is in train."""
    if data.conversations and not stratify:
        return _split_conversations(data, fraction, seed)
    groups = rows_by_group(data, data.conversations)
    if data.conversations:  # classified conversations, one row each: grouped by conversation, linked ones together
        groups = linked_conversations(groups)
    what = "distinct conversations" if data.conversations else "distinct inputs"
    if len(groups) < 2 * MIN_TEST_ROWS:
        raise DataError(
            [
                Problem(
                    "too_few_examples",
                    data.source,
                    None,
                    None,
                    f"{len(groups)} {what}, too few to split: adaptlab init needs "
                    f"{2 * MIN_TEST_ROWS} ({MIN_TEST_ROWS} to test on, {MIN_TEST_ROWS} to learn from)",
                    "add labeled rows, or write train.jsonl and test.jsonl yourself (docs/experiment.md)",
                )
            ]
        )
    count = min(max(round(len(groups) * fraction), MIN_TEST_ROWS), len(groups) - MIN_TEST_ROWS)
    firsts = Dataset(
        [Example(key, rows[0].output, rows[0].line) for key, rows in groups.items()], data.source
    )  # a group's key as its input
    _, held = split_dev(firsts, (count + 0.5) / len(firsts), seed, stratify)  # int(n * fraction) == count exactly
    assert held is not None  # count >= MIN_TEST_ROWS == MIN_DEV_ROWS rows, so split_dev holds them out
    held_keys = {e.input for e in held}
    notes = []
    if stratify:  # a label whose every row went to test could not be learned, and compare refuses unseen test labels
        trained = {e.output for key, rows in groups.items() if key not in held_keys for e in rows}
        moved = 0
        for e in held:  # in split order, so the first test row of such a label goes back
            outputs = {r.output for r in groups[e.input]}
            if not outputs <= trained:
                held_keys.discard(e.input)
                trained |= outputs
                moved += 1
        if moved:
            notes.append(
                f"{moved} test row{'s' if moved > 1 else ''} went back to train so that every label has a training row"
            )
        rare = sorted(label for label, n in Counter(data.outputs).items() if n == 1)
        if rare:
            notes.append(
                f"{len(rare)} label{'s have' if len(rare) > 1 else ' has'} one row only "
                f"({', '.join(rare[:5])}{', ...' if len(rare) > 5 else ''}): in train, never tested"
            )
    shared = sum(len(rows) for rows in groups.values() if len(rows) > 1)
    if shared:
        notes.append(
            f"{shared} conversations share a turn or an id with another: each such group is on one side of the split"
            if data.conversations
            else f"{shared} rows share their input with another row (case and spacing aside): each such "
            "group is on one side of the split"
        )
    held_rows = {id(e) for key in held_keys for e in groups[key]}
    return [e for e in data if id(e) not in held_rows], [e for e in data if id(e) in held_rows], notes


def _split_conversations(data: Dataset, fraction: float, seed: int) -> tuple[list[Example], list[Example], list[str]]:
    """(train, test, notes) for conversations answered turn by turn: a seeded `fraction` of the conversations held out
    whole (and more while the test split has fewer than MIN_TEST_ROWS answers), conversations that share a turn or an
    id kept on one side, at least MIN_TEST_ROWS answers left to train on."""
    by_conversation = rows_by_group(data, conversations=True)
    conversations, groups = len(by_conversation), linked_conversations(by_conversation)
    if len(groups) < 2 or len(data) < 2 * MIN_TEST_ROWS:
        raise DataError(
            [
                Problem(
                    "too_few_examples",
                    data.source,
                    None,
                    None,
                    f"{conversations} conversations with {len(data)} answers, too few to split: "
                    "adaptlab init needs 2 conversations "
                    f"and {2 * MIN_TEST_ROWS} answers ({MIN_TEST_ROWS} to test on, {MIN_TEST_ROWS} to learn from)",
                    "add conversations, or write train.jsonl and test.jsonl yourself (docs/experiment.md)",
                )
            ]
        )
    keys = list(groups)
    random.Random(seed).shuffle(keys)
    wanted = max(1, round(conversations * fraction))
    held: list[str] = []
    held_conversations = held_rows = 0
    for key in keys:
        if held_conversations >= wanted and held_rows >= MIN_TEST_ROWS:
            break
        rows = groups[key]
        if len(data) - held_rows - len(rows) < MIN_TEST_ROWS or len(held) + 1 == len(groups):
            continue  # train keeps at least MIN_TEST_ROWS answers and one conversation
        held.append(key)
        held_conversations += len({(e.conversation, e.line) for e in rows})
        held_rows += len(rows)
    if held_rows < MIN_TEST_ROWS:
        raise DataError(
            [
                Problem(
                    "too_few_examples",
                    data.source,
                    None,
                    None,
                    f"{conversations} conversations with {len(data)} answers: no split leaves "
                    f"{MIN_TEST_ROWS} answers on each side "
                    "with whole conversations",
                    "add conversations, or write train.jsonl and test.jsonl yourself (docs/experiment.md)",
                )
            ]
        )
    test = {id(e) for key in held for e in groups[key]}
    notes = []
    linked = sum(
        len({(e.conversation, e.line) for e in rows})
        for rows in groups.values()
        if len({(e.conversation, e.line) for e in rows}) > 1
    )
    if linked:
        notes.append(
            f"{linked} conversations share a turn (history and answer) or an id with another: each "
            "such group is on one side of the split"
        )
    return [e for e in data if id(e) not in test], [e for e in data if id(e) in test], notes


def _test_size_warning(rows: int) -> list[str]:
    detectable = Z_POWER * math.sqrt(DISAGREE / rows)
    if detectable <= COARSE:
        return []

    def needed(difference: float) -> int:
        return math.ceil(DISAGREE * (Z_POWER / difference) ** 2)

    return [
        (
            f"the test split has {rows} rows: two contenders would have to differ by about "
            f"{detectable:.2f} on a 0-1 score such as accuracy to be told apart "
            "(80% power, 5% level, when they disagree on 3 rows in 10); a useful test needs about "
            f"{needed(COARSE)} rows to tell apart {COARSE:g} "
            f"and {needed(USEFUL)} to tell apart {USEFUL:g}: add labeled rows, or raise --test-fraction"
        )
    ]


def contenders(spec, documents: bool, train_rows: int, gpu: bool) -> list[Entry]:
    """The contenders, chosen by their kinds' traits: the instruction alone, training examples in the prompt, retrieved
    passages (with documents), and an adapter over the shared base model (from FINE_TUNE_MIN_ROWS training rows;
    modest epochs on a CPU)."""
    from adaptlab import kinds

    able = [k for k in kinds.kinds() if k.llm and k.answers(spec.name)]
    prompted = [k for k in able if k.prompted]
    picks = [
        next((k for k in prompted if not k.examples_in_prompt and not k.reads_documents), None),
        next((k for k in prompted if k.examples_in_prompt), None),
    ]
    picks += [next((k for k in prompted if k.reads_documents), None)] if documents else []
    out = [Entry(k.name, k.summary) for k in picks if k is not None]
    adapter = next((k for k in able if k.trains and not k.own_weights), None)
    if adapter is None:
        return out
    why = (
        f"Fine-tuning is listed from {FINE_TUNE_MIN_ROWS} training rows: its 10% dev split then holds "
        f"the {MIN_DEV_ROWS} rows it picks its best checkpoint by"
    )
    if train_rows < FINE_TUNE_MIN_ROWS:
        return out + [
            Entry(
                adapter.name,
                adapter.summary,
                note=f"{why}; here {train_rows}: left out (uncomment to try it anyway).",
                off=True,
            )
        ]
    if gpu:
        return out + [
            Entry(adapter.name, adapter.summary, note=f"{why} (here {train_rows}). A GPU: the default 3 epochs.")
        ]
    minutes = train_rows * CPU_EPOCHS * CPU_SECONDS_PER_ROW[spec.labelled] / 60
    epochs = (
        CPU_EPOCHS,
        f"on a CPU: about {max(1, round(minutes))} min on 2 cores ({train_rows} rows x {CPU_EPOCHS} "
        f"x ~{CPU_SECONDS_PER_ROW[spec.labelled]} s); the default is 3",
    )
    return out + [Entry(adapter.name, adapter.summary, {"epochs": epochs}, note=f"{why} (here {train_rows}).")]


def _relative(path: str | Path, folder: Path) -> str:
    """`path` relative to the experiment's folder when it is near (the pair can move together), else absolute."""
    target = Path(path).resolve()
    try:
        relative = os.path.relpath(target, folder.resolve())
    except ValueError:  # another drive (Windows): no relative path
        return str(target)
    return relative if Path(relative).parts[:3] != ("..", "..", "..") else str(target)


def _line(text: str, comment: str, width: int = 33) -> str:
    return f"{text:<{width - 1}} # {comment}" if comment else text


def experiment_text(
    *,
    name: str,
    kind: str,
    reason: str,
    instruction: str | None,
    source: Path,
    seed: int,
    train: int,
    test: int,
    labels: list[str],
    docs: str | None,
    strategies: list[Entry],
    references: tuple[str, ...],
) -> str:
    """The commented experiment.yaml: every line a user may change says what it does."""
    spec = task_kind(kind)
    if instruction is None:
        instruction = (
            "Read the message and reply with the one label that fits it best."
            if spec.labelled
            else f'Answer the question from the documents. If they do not say, answer "{DEFAULT_ABSTAIN}".'
            if spec.abstains
            else "Read the input and write the output for it."
        )
        said = (
            "# EDIT the instruction: a generic placeholder. Say what the inputs are and what a right "
            "answer is, in your team's words;"
        )
    else:
        said = (
            "# The instruction is the data's shared system message; edit it to say what the task is, in "
            "your team's words;"
        )
    lines = [
        f"# Written by `adaptlab init {source}`: {train + test} rows split into train.jsonl and test.jsonl.",
        "# Edit task.instruction below, then run `adaptlab compare` on this file.",
        "task:",
        f"  name: {json.dumps(name)}",
        f"  {said}",
        "  # every prompt starts with it" + (" (the label list is added for you)." if spec.labelled else "."),
        f"  instruction: {json.dumps(instruction, ensure_ascii=False)}",
        _line(f"  kind: {kind}", f"inferred: {reason}"),
    ]
    if labels:
        shown = ", ".join(f"{json.dumps(label, ensure_ascii=False)}: what it means" for label in labels[:3])
        lines.append(
            f"  # labels: {{{shown}{', ...' if len(labels) > 3 else ''}}}   # optional: each label's "
            "meaning, in every prompt"
        )
    lines += [
        _line("data:", "paths are relative to this file"),
        _line("  train: train.jsonl", f"{train} rows, written by adaptlab init"),
        _line("  test: test.jsonl", f"{test} held-out rows every contender is measured on"),
    ]
    lines += [_line(f"  docs: {json.dumps(docs)}", "the documents the answers come from")] if docs else []
    lines += [
        _line(
            f"model: {DEFAULT_MODEL}",
            "the embedded default; a local Hugging Face folder or .gguf too (or compare --model)",
        ),
        _line(f"seed: {seed}", "example selection and training; recorded with the results"),
        f"# The task kind's references run too ({' and '.join(references)}): baselines is true by default.",
        "# An LLM contender is recommended only when it beats them; `baselines: false` skips them.",
        "strategies:",
    ]
    for entry in strategies:
        lines += [f"  # {entry.note}"] if entry.note else []
        lines.append(_line(f"  {'# ' if entry.off else ''}- name: {entry.kind}", entry.comment))
        lines += [
            _line(f"  {'# ' if entry.off else ''}  {key}: {json.dumps(value)}", why)
            for key, (value, why) in entry.settings.items()
        ]
    return "\n".join(lines) + "\n"


def _check(text: str, folder: Path) -> None:
    """The written experiment must be one compare accepts as is."""
    import yaml

    from adaptlab.runs.experiment import parse_experiment

    parse_experiment(yaml.safe_load(text), str(folder / "experiment.yaml"))


def _jsonl(rows: list[Example], abstains: bool) -> str:
    """input/output lines; an abstain answer as null (a question the documents do not answer), sources kept."""

    def line(e: Example) -> dict:
        out = {"input": e.input, "output": None if abstains and e.output == DEFAULT_ABSTAIN else e.output}
        return out | ({"sources": list(e.sources)} if e.sources else {})

    return "".join(json.dumps(line(e), ensure_ascii=False) + "\n" for e in rows)


def source_lines(data: Path) -> dict[int, str]:
    """A data file's lines by their 1-based number, as load_dataset counts them (a Parquet file's or `datasets`
    folder's rows, written as JSON objects)."""
    if data.is_dir() or data.suffix.lower() == ".parquet":
        from adaptlab.data.load import _Collector, _datasets_rows, _parquet_rows

        rows = (
            _datasets_rows(data, _Collector(str(data))) if data.is_dir() else _parquet_rows(data, _Collector(str(data)))
        )
        return {n: json.dumps(row, ensure_ascii=False, default=str) for n, row in enumerate(rows, start=1)}
    raw = data.read_bytes()
    raw = raw[3:] if raw.startswith(b"\xef\xbb\xbf") else raw
    return {n: line.rstrip(b"\r").decode("utf-8") for n, line in enumerate(raw.split(b"\n"), start=1) if line.strip()}


def _lines_of(rows: list[Example], lines: dict[int, str]) -> str:
    """The source lines the rows were read from, each once, in file order."""
    numbers = sorted({e.line for e in rows if e.line is not None})
    return "".join(lines[n] + "\n" for n in numbers)
