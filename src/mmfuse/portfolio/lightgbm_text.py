"""LightGBM's model text checked field by field, and written again from the checked values, before LightGBM's C++
parser sees it: a model folder is data, and that parser trusts its input (a child index out of range crashes the
process, a truncated text aborts it, ``num_class=1000000000`` allocates 149 GiB).

    text = checked_model_text(saved_text, features=42)   # -> the same model, regenerated; ValueError saying what

Checked: the header's fields (version, one tree per class per round, the feature count against ``features``,
objective, feature names and ranges), then every tree: its arrays have the lengths ``num_leaves`` gives, numbers are
finite, split features exist, decision types are LightGBM's, categorical splits point into their bitsets, and the
children form one tree from the root (each node reached once: no cycle, no index out of range); only a
threshold may be infinite (LightGBM's split of the missing values). The text handed on
holds only those fields, printed as Python prints a float (17 significant digits: the same doubles).
"""

from __future__ import annotations

import math
import re

MAX_LEAVES = 131_072   # LightGBM's own limit on num_leaves
MAX_FEATURES = 1_000_000
_OBJECTIVE = re.compile(r"[a-z_]+( [a-z_]+:[0-9.eE+-]+)*")
_INFO = re.compile(r"none|\[-?[0-9.eE+-]+(inf)?:-?[0-9.eE+-]+(inf)?\]|-?\d+(:-?\d+)*")
_INNER_FLOATS = ("split_gain", "threshold", "internal_value", "internal_weight")  # one value per inner node
_INNER_INTS = ("split_feature", "decision_type", "left_child", "right_child", "internal_count")


def checked_model_text(text: str, features: int | None = None) -> str:
    """The model text regenerated from its checked fields; ValueError naming the first field that is wrong."""
    if not isinstance(text, str) or "\x00" in text:
        raise ValueError("the LightGBM model is not text")
    head, _, body = text.partition("\nTree=0\n")
    if not body:
        raise ValueError("the LightGBM model holds no trees")
    header = _fields(head.split("\n")[1:], "the model header") if head.startswith("tree\n") else None
    if header is None:
        raise ValueError("the LightGBM model does not start with its 'tree' header")
    if header.get("version") != "v4":
        raise ValueError(f"LightGBM model version {header.get('version')!r}, not v4")
    classes = _int(header, "num_class", 1, MAX_FEATURES, "the model header")
    per_round = _int(header, "num_tree_per_iteration", 1, MAX_FEATURES, "the model header")
    width = _int(header, "max_feature_idx", 0, MAX_FEATURES - 1, "the model header") + 1
    if per_round != classes or header.get("label_index") != "0":
        raise ValueError("the LightGBM model header's num_class, num_tree_per_iteration and label_index disagree")
    if features is not None and width != features:
        raise ValueError(f"the LightGBM model reads {width} features, the member gives it {features}")
    if not _OBJECTIVE.fullmatch(header.get("objective", "")):
        raise ValueError(f"LightGBM objective {header.get('objective')!r} is not one mmfuse writes")
    names, infos = header.get("feature_names", "").split(" "), header.get("feature_infos", "").split(" ")
    if len(names) != width or len(infos) != width or not all(n and n.isprintable() for n in names) \
            or not all(_INFO.fullmatch(i) for i in infos):
        raise ValueError("the LightGBM model's feature names or ranges do not match its feature count")
    blocks = ("Tree=0\n" + body).split("\nend of trees")[0].strip("\n").split("\n\n\n")
    trees = [_tree(block, k, width) for k, block in enumerate(blocks)]
    if len(trees) % per_round:
        raise ValueError(f"the LightGBM model holds {len(trees)} trees, not whole rounds of {per_round}")
    out = ["tree", "version=v4", f"num_class={classes}", f"num_tree_per_iteration={per_round}", "label_index=0",
           f"max_feature_idx={width - 1}", f"objective={header['objective']}", f"feature_names={' '.join(names)}",
           f"feature_infos={' '.join(infos)}", ""]
    return "\n".join(out + trees + ["end of trees", ""])


def _fields(lines: list[str], where: str) -> dict[str, str]:
    fields = {}
    for line in lines:
        if not line:
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.replace("_", "").isalpha() or key in fields:
            raise ValueError(f"{where} has a line that is not one key=value: {line[:40]!r}")
        fields[key] = value
    return fields


def _int(fields: dict[str, str], key: str, low: int, high: int, where: str) -> int:
    value = fields.get(key, "")
    if not re.fullmatch(r"-?\d{1,9}", value) or not low <= int(value) <= high:
        raise ValueError(f"{where}: {key}={value[:20]!r} is not a whole number in [{low}, {high}]")
    return int(value)


def _numbers(fields: dict[str, str], key: str, count: int, kind: type, where: str) -> list:
    raw = fields.get(key, "")
    values = raw.split(" ") if raw else []
    if len(values) != count:
        raise ValueError(f"{where}: {key} holds {len(values)} values, not {count}")
    try:
        numbers = [kind(v) for v in values]
    except ValueError:
        raise ValueError(f"{where}: {key} holds a value that is not a number") from None
    if kind is float and not all(math.isfinite(v) or key == "threshold" and not math.isnan(v) for v in numbers):
        raise ValueError(f"{where}: {key} holds a value that is not finite")  # (a threshold may be +-inf)
    return numbers


def _tree(block: str, index: int, width: int) -> str:
    """One tree's text, checked and regenerated."""
    where = f"LightGBM tree {index}"
    lines = block.split("\n")
    if lines[0] != f"Tree={index}":
        raise ValueError(f"{where} is not where the model's trees say it is")
    fields = _fields(lines[1:], where)
    leaves = _int(fields, "num_leaves", 1, MAX_LEAVES, where)
    cats = _int(fields, "num_cat", 0, leaves - 1, where)
    inner = leaves - 1
    values = {k: _numbers(fields, k, inner, float, where) for k in _INNER_FLOATS}
    values |= {k: _numbers(fields, k, inner, int, where) for k in _INNER_INTS}
    values["leaf_value"] = _numbers(fields, "leaf_value", leaves, float, where)
    for key, kind in (("leaf_weight", float), ("leaf_count", int)):  # LightGBM leaves these empty in a 1-leaf tree
        values[key] = _numbers(fields, key, leaves if fields.get(key) else 0, kind, where)
    if fields.get("is_linear", "0") != "0":
        raise ValueError(f"{where} is a linear tree, which mmfuse never fits")
    shrinkage = _numbers(fields, "shrinkage", 1, float, where) if "shrinkage" in fields else [1.0]
    if not all(0 <= f < width for f in values["split_feature"]):
        raise ValueError(f"{where} splits on a feature the model does not have")
    if not all(0 <= d < 16 and (d >> 2) & 3 < 3 for d in values["decision_type"]):
        raise ValueError(f"{where} has a decision type LightGBM does not define")
    bounds, bits = _bitsets(fields, cats, where)
    categorical = [d & 1 for d in values["decision_type"]]
    if sum(categorical) and not cats or any(c and not (float(t).is_integer() and 0 <= t < cats)
                                            for c, t in zip(categorical, values["threshold"])):
        raise ValueError(f"{where} has a categorical split with no bitset of its own")
    _check_shape(values["left_child"], values["right_child"], leaves, where)
    out = [f"Tree={index}", f"num_leaves={leaves}", f"num_cat={cats}"]
    out += [f"{k}={' '.join(map(repr, values[k]))}" for k in ("split_feature", "split_gain", "threshold",
                                                               "decision_type", "left_child", "right_child",
                                                               "leaf_value", "leaf_weight", "leaf_count",
                                                               "internal_value", "internal_weight", "internal_count")]
    if cats:
        out += [f"cat_boundaries={' '.join(map(str, bounds))}", f"cat_threshold={' '.join(map(str, bits))}"]
    return "\n".join(out + ["is_linear=0", f"shrinkage={shrinkage[0]!r}", "", ""])


def _bitsets(fields: dict[str, str], cats: int, where: str) -> tuple[list[int], list[int]]:
    """A tree's categorical splits: (boundaries, bitset words), checked against each other."""
    if not cats:
        return [], []
    bounds = _numbers(fields, "cat_boundaries", cats + 1, int, where)
    bits_raw = fields.get("cat_threshold", "")
    bits = _numbers(fields, "cat_threshold", len(bits_raw.split(" ")) if bits_raw else 0, int, where)
    if bounds[0] != 0 or bounds[-1] != len(bits) or any(b > a for b, a in zip(bounds, bounds[1:])) \
            or not all(0 <= b < 2**32 for b in bits):
        raise ValueError(f"{where}'s categorical bitsets do not match their boundaries")
    return bounds, bits


def _check_shape(left: list[int], right: list[int], leaves: int, where: str) -> None:
    """Children: node j >= 0 is internal node j, ~k (< 0) is leaf k; from the root every node and leaf is reached
    exactly once."""
    if leaves == 1:
        return
    seen_nodes, seen_leaves, stack = [0] * (leaves - 1), [0] * leaves, [0]
    seen_nodes[0] = 1
    while stack:
        node = stack.pop()
        for child in (left[node], right[node]):
            if child >= 0:
                if child >= leaves - 1 or seen_nodes[child]:
                    raise ValueError(f"{where}'s children do not form a tree (node {child} out of range or reached "
                                     "twice)")
                seen_nodes[child] = 1
                stack.append(child)
            else:
                leaf = ~child
                if leaf >= leaves or seen_leaves[leaf]:
                    raise ValueError(f"{where}'s children do not form a tree (leaf {leaf} out of range or reached "
                                     "twice)")
                seen_leaves[leaf] = 1
    if not all(seen_nodes) or not all(seen_leaves):
        raise ValueError(f"{where} has nodes its root never reaches")
