"""Groups from file names: frames of one video (or one patient, one plot) stay together.

Many real sets are frames of a few videos, and their names say which video: CamVid's
`0001TP_006690.png`, `Seq05VD_f00210.png`. A split that puts frames of one video in train and in
test measures memory of that scene, not generalisation. `group_from_name` turns a regular
expression into `Sample.group` for any task (folder trees, manifests, dense-task readers), so the
splitter keeps a group in one split and `group_report` can list groups that cross given splits.

Rule: `re.search` on the file's base name; the first capture group is the group when the
pattern has one (and it took part in the match), otherwise the whole match. A name the pattern
does not match keeps no group (it is its own unit); a pattern that matches no name at all is a
usage error, since it is almost certainly a typo.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Sequence

from edgetl.data.samples import SPLITS, DataSet, Sample
from edgetl.errors import UsageError

UNSPLIT = "(none)"  # the split key of samples that have no split yet


def compile_group_rule(pattern: str) -> re.Pattern[str]:
    """The compiled rule; a bad expression is a usage error naming it."""
    try:
        return re.compile(pattern)
    except re.error as exc:
        hint = "e.g. '^([^_]+)_' takes the text before the first underscore"
        raise UsageError(f"group rule {pattern!r} is not a valid regular expression: {exc}",
                         hint=hint) from exc


def group_of_name(name: str, rule: re.Pattern[str]) -> str | None:
    """The group a file name belongs to under `rule`, None when it does not match."""
    match = rule.search(os.path.basename(name))
    if match is None:
        return None
    text = match.group(1) if rule.groups and match.group(1) is not None else match.group(0)
    return text or None


def group_from_name(ds: DataSet, pattern: str) -> DataSet:
    """A copy of `ds` whose sample groups come from their file names (see module docstring).

    Groups a source gave (a manifest's group column) are replaced, and the notes say how many.
    """
    rule = compile_group_rule(pattern)
    groups = [group_of_name(s.path, rule) for s in ds.samples]
    matched = sum(g is not None for g in groups)
    if ds.samples and matched == 0:
        example = os.path.basename(ds.samples[0].path)
        raise UsageError(f"group rule {pattern!r} matches none of the {len(ds.samples)} file "
                         f"names (e.g. {example})",
                         hint="the rule is searched in the base name; test it on one name")
    replaced = sum(s.group is not None and s.group != g
                   for s, g in zip(ds.samples, groups, strict=True))
    samples = [dataclasses.replace(s, group=g) for s, g in zip(ds.samples, groups, strict=True)]
    notes = list(ds.notes)
    note = (f"groups from file names by {pattern!r}: {len({g for g in groups if g})} group(s) "
            f"over {matched} image(s)")
    if matched < len(groups):
        note += f"; {len(groups) - matched} name(s) did not match and stay ungrouped"
    if replaced:
        note += f"; {replaced} group(s) given by the source replaced"
    notes.append(note)
    return ds.replace(samples=samples, notes=notes)


def group_split_counts(samples: Sequence[Sample]) -> dict[str, dict[str, int]]:
    """Per group, images per split (unsplit samples under '(none)'), groups sorted."""
    table: dict[str, dict[str, int]] = {}
    for s in samples:
        if s.group is None:
            continue
        per = table.setdefault(s.group, {})
        key = s.split or UNSPLIT
        per[key] = per.get(key, 0) + 1
    order = {name: i for i, name in enumerate((*SPLITS, UNSPLIT))}
    return {g: dict(sorted(per.items(), key=lambda kv: order[kv[0]]))
            for g, per in sorted(table.items())}


def groups_across_splits(samples: Sequence[Sample]) -> list[dict]:
    """Groups with images in more than one assigned split: `{"group", "splits": {split: n}}`."""
    across = []
    for group, per in group_split_counts(samples).items():
        assigned = {k: v for k, v in per.items() if k != UNSPLIT}
        if len(assigned) > 1:
            across.append({"group": group, "splits": assigned})
    return across


def group_report(ds: DataSet) -> dict:
    """Groups, their images per split, and those that cross the given splits (JSON-ready)."""
    per_group = group_split_counts(ds.samples)
    return {
        "n_groups": len(per_group),
        "ungrouped": sum(s.group is None for s in ds.samples),
        "groups": per_group,
        "across_splits": groups_across_splits(ds.samples) if ds.has_splits else [],
    }
