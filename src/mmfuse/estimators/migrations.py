"""Bundles of older formats read as today's, in one place: what each format lacked and how it is filled in.

    format 1  processors.json kept one flat mapping per input (settings and fitted state mixed); image processors
              saved the fitted channel count over their "auto" setting; pretrained features were float32
    format 2  no manifest: only the weights' checksum (``io.bundle.verify_bundle`` checks what a format sealed)
    format 3  no input plan (derived from the saved config and columns, as the fit that saved it decided it), no
              plugin list (nothing to import)
    format 4  today's

Each step takes what ``io.bundle.load_bundle`` read and returns it as the current format has it.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

from ..config import ModelConfig
from ..core.columns import ColumnInfo
from ..pipeline import InputPlan, plan_inputs
from ..registry import PROCESSORS


def _channel_count(flat: dict[str, Any], state: dict[str, Any]) -> None:
    state["fitted"]["channels_"] = int(flat["channels"])  # format 1 overwrote "auto" with the fitted count


def _float32_features(flat: dict[str, Any], state: dict[str, Any]) -> None:
    state["params"]["precision"] = "32"  # format 1 computed frozen features in float32


FORMAT1_FIXES: dict[str, Callable[[dict[str, Any], dict[str, Any]], None]] = {
    "image": _channel_count, "pretrained_text": _float32_features, "pretrained_image": _float32_features}


def processor_states(states: dict[str, dict[str, Any]], format_version: int) -> dict[str, dict[str, Any]]:
    """processors.json of any format -> input name -> {"kind", "params", "fitted"} (today's processor state)."""
    return states if format_version > 1 else {name: _format1_state(flat) for name, flat in states.items()}


def _format1_state(flat: dict[str, Any]) -> dict[str, Any]:
    """A format-1 flat processor state (every public attribute) -> params (the constructor's) and fitted state."""
    params = set(inspect.signature(PROCESSORS.get(flat["kind"])).parameters)
    state = {"kind": flat["kind"], "params": {k: v for k, v in flat.items() if k in params},
             "fitted": {f"{k}_": v for k, v in flat.items() if k not in params and k != "kind"}}
    FORMAT1_FIXES.get(flat["kind"], lambda flat, state: None)(flat, state)
    return state


def input_plans(config: dict[str, Any], columns: list[ColumnInfo], model: ModelConfig) -> dict[str, InputPlan]:
    """The saved input plan (format 4 on), or the one the fit that saved an older bundle made from its config."""
    if "inputs" in config:
        return {p["name"]: InputPlan(**p) for p in config["inputs"]}
    return plan_inputs(columns, model)
