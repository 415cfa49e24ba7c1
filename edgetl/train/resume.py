"""What a run folder holds before training starts, and what is left when a start fails.

Checked once, before the recipe is written:
- the folder can be made and written (not a file, not on a read-only disk);
- a folder holding only the start of a run that never finished an epoch (`recipe.yaml`,
  `split.csv`, ... but no saved epoch) is a failed start: it is cleared, so the same command,
  corrected, starts instead of stopping at "already exists" and then "recipe differs";
- `--resume` continues from `last/` or says plainly why it cannot: a run that logged epochs but
  has no whole `last/` is an error, never a silent start from scratch; a torn last line of
  `metrics.jsonl` (an interrupted append) is dropped with a warning, and the line of an epoch
  `last/` or `best/` saved is written back from their checkpoint record (which keeps it), so
  no finished epoch goes missing from the log (`restore_saved_lines`).
A fresh run that fails or is interrupted before its first saved epoch removes what it wrote
(`discard_failed_start`), so nothing of it blocks the retry either.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from edgetl.checkpoint import OPTIMIZER_FILE, RECORD_FILE
from edgetl.checkpoint import TRAIN_STATE_FILE as STATE_FILE
from edgetl.errors import ArtifactError, RecipeError
from edgetl.io import atomic_write_text, json_text, require_writable
from edgetl.runfolder import (
    BEST,
    FAILED_FILE,
    LAST,
    METRICS_FILE,
    OLD_SUFFIX,
    RUN_MARKER,
    RunFolder,
)

METRICS = METRICS_FILE
MARKER = RUN_MARKER  # written first into a new run folder: only such a folder is ever cleared
# Everything a run writes into its folder; only a folder made of these can be cleared.
RUN_ENTRIES = RunFolder.run_entries()


def read_metrics(path: Path) -> tuple[list[dict[str, Any]], list[int]]:
    """The parsed lines of `metrics.jsonl` and the numbers of lines that are not whole JSON."""
    if not path.is_file():
        return [], []
    rows: list[dict[str, Any]] = []
    torn: list[int] = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            torn.append(number)
            continue
        if isinstance(row, dict) and "epoch" in row:
            rows.append(row)
        else:
            torn.append(number)
    return rows, torn


def repair_metrics(path: Path) -> list[dict[str, Any]]:
    """Drop lines that are not whole JSON (an append cut short), saying so; the whole lines."""
    rows, torn = read_metrics(path)
    if torn:
        atomic_write_text(path, "".join(json_text(r) + "\n" for r in rows))
        which = "its last line" if len(torn) == 1 else f"lines {', '.join(map(str, torn))}"
        _warn(f"{path}: dropped {which}, not whole JSON (an interrupted write)")
    return rows


def has_saved_epoch(out: Path) -> bool:
    run = RunFolder(out)
    return run.train_state_path.is_file() or \
        (run.checkpoint_path(LAST + OLD_SUFFIX) / STATE_FILE).is_file()


def _is_run_entry(name: str) -> bool:
    """A run file, or the temporary file an atomic write of one leaves when killed
    (`.<name>.<random>.tmp<suffix>`, see `edgetl.io.atomic_write_with`)."""
    if name in RUN_ENTRIES:
        return True
    match = re.match(r"^\.(.+)\.[^.]+\.tmp(\.[^.]+)?$", name)
    return match is not None and match.group(1) in RUN_ENTRIES


def is_failed_start(out: Path) -> bool:
    """A folder edgetl made (its marker) with only run files, no saved and no logged epoch."""
    if not (out / MARKER).is_file():
        return False
    if not all(_is_run_entry(p.name) for p in out.iterdir()) or has_saved_epoch(out):
        return False
    rows, _ = read_metrics(out / METRICS)
    return not rows


def discard_failed_start(out: Path) -> bool:
    """Remove a failed start's files (only run files; never anything else); True if removed."""
    if os.environ.get("RANK", "0") != "0" or not is_failed_start(out):
        return False
    for entry in out.iterdir():
        if entry.name == MARKER:
            continue  # the folder stays edgetl's: a retry may clear it again
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    return True


def open_run_folder(out: Path, resume: bool, console: Any) -> bool:
    """Check the run folder before anything is written; returns whether the run resumes."""
    from edgetl.train.state import recover_folder

    require_writable(out, "--out", folder=True)
    if is_failed_start(out):
        if resume:  # never silently: the user asked to continue something
            _note(console, f"nothing to resume in {out}: no epoch was saved; starting from the "
                  "first epoch")
        else:
            _note(console, f"{out} holds only the start of a run that ended before its first "
                  "epoch: starting afresh")
        discard_failed_start(out)
        resume = False
    if not resume:
        if not out.exists() or not any(out.iterdir()):
            out.mkdir(parents=True, exist_ok=True)
            atomic_write_text(out / MARKER, "a run folder written by 'edgetl finetune'\n")
        return False
    if not RunFolder(out).recipe_path.is_file():
        return True  # prepare_run_folder says there is nothing to resume
    refuse_failed(out)
    for name in (LAST, BEST):
        recover_folder(RunFolder(out).checkpoint_path(name))
    rows = repair_metrics(out / METRICS)
    last = RunFolder(out).last_path
    if not (last / STATE_FILE).is_file():
        raise ArtifactError(
            f"cannot resume {out}: it logged {len(rows)} epoch(s) in {METRICS} but "
            f"{'last/ is missing' if not last.is_dir() else f'last/ has no {STATE_FILE}'}, "
            "so there is no saved training state to continue from",
            "start a new run with another --out (best/, if any, is kept)")
    restore_saved_lines(out, rows)
    return True


def _saved_line(folder: Path) -> dict[str, Any] | None:
    """The metrics line a checkpoint folder was saved with (its record keeps it)."""
    try:
        record = json.loads((folder / RECORD_FILE).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    line = record.get("metrics") if isinstance(record, dict) else None
    return line if isinstance(line, dict) and isinstance(line.get("epoch"), int) else None


def restore_saved_lines(out: Path, rows: list[dict[str, Any]]) -> None:
    """Write back the line of every epoch that `last/` (or `best/`) saved but `metrics.jsonl`
    lost (a torn or cut line): resuming continues after that epoch, so it would never be
    logged again. Epochs lost with no checkpoint that keeps them are named in a warning."""
    try:
        state = json.loads((RunFolder(out).last_path / STATE_FILE).read_text())
        finished = int(state["global_epoch"])
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError,
            ValueError):
        return  # load_last reports a damaged state in its own words
    logged = {r["epoch"] for r in rows}
    restored: dict[int, tuple[dict[str, Any], str]] = {}
    for name in (LAST, BEST):  # last/'s line is the logged one (best/'s lacks the verdicts)
        line = _saved_line(out / name)
        if line is not None and line["epoch"] <= finished and line["epoch"] not in logged:
            restored.setdefault(line["epoch"], (line, name))
    if restored:
        merged = sorted(rows + [line for line, _ in restored.values()],
                        key=lambda r: r["epoch"])
        atomic_write_text(out / METRICS, "".join(json_text(r) + "\n" for r in merged))
        logged |= set(restored)
        which = ", ".join(f"epoch {e} from {name}/" for e, (_, name) in sorted(restored.items()))
        _warn(f"{out / METRICS}: wrote back the line of {which}: it was lost from the log")
    missing = [e for e in range(1, finished + 1) if e not in logged]
    if missing:
        _warn(f"{out / METRICS}: no line for epoch(s) {', '.join(map(str, missing))}, and no "
              "checkpoint keeps them: the log and curves.png skip them")


def refuse_failed(out: Path) -> None:
    """A run that stopped because it diverged would diverge again from the same state with the
    same recipe (and --resume refuses another recipe): say so instead of trying."""
    path = out / FAILED_FILE
    if not path.is_file():
        return
    try:
        reason = json.loads(path.read_text()).get("reason", "see the file")
    except (json.JSONDecodeError, AttributeError, OSError):
        reason = "see the file"
    raise RecipeError(f"cannot resume {out}: training diverged there ({reason}; {path}), and "
                      "the same recipe would diverge again",
                      "lower the learning rate and start a new run with another --out")


def _note(console: Any, text: str) -> None:
    console.print(f"note: {text}", markup=False, highlight=False, soft_wrap=True)


def _warn(text: str) -> None:
    """A warning the CLI prints as one `warning:` line on stderr (tests can catch it)."""
    import warnings

    warnings.warn(text, stacklevel=2)


RESUME_HINT = "the run cannot continue from it: start a new run with another --out"


def load_last(folder: Path) -> tuple[Any, dict[str, Any] | None]:
    """`last/`'s training state and optimizer state, after checking its weights' sha256: a
    damaged file is one line (exit 2), never a traceback or a silent fresh optimizer."""
    # not at the top: importing this module loads no torch
    import torch

    from edgetl.checkpoint import check_weights, read_checkpoint_info
    from edgetl.train.integrity import load_state_file
    from edgetl.train.state import TrainState

    check_weights(read_checkpoint_info(folder), RESUME_HINT)
    state = load_state_file(folder / STATE_FILE,
                            lambda p: TrainState.from_dict(json.loads(p.read_text())),
                            RESUME_HINT)
    optimizer = load_state_file(folder / OPTIMIZER_FILE,
                                lambda p: torch.load(p, weights_only=True), RESUME_HINT)
    return state, optimizer


def load_torch_state(path: Path) -> Any:
    """A torch state file of `last/` (the weight average), decode failures as one line."""
    # not at the top: importing this module loads no torch
    import torch

    from edgetl.train.integrity import load_state_file

    return load_state_file(path, lambda p: torch.load(p, weights_only=True), RESUME_HINT)


def discard_partial_report(out: Path) -> None:
    """`test_metrics.json` without `summary.json` (cut between the two): remove it, so a run
    folder with a test report is always a finished run."""
    run = RunFolder(out)
    if os.environ.get("RANK", "0") == "0" and run.test_report_path.is_file() and \
            not run.summary_path.is_file():
        run.test_report_path.unlink()
