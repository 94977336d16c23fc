"""Arguments given in the wrong place: one line that says where each belongs (a constructor setting passed to
``fit``, AutoGluon's or scikit-learn's name for an mmfuse setting, a typo), instead of Python's bare TypeError.

    Predictor(label="y").fit(df, time_limit=60)
    TypeError: time_limit is a setting of Predictor, not an argument of fit(): Predictor(label=..., time_limit=60)
    .fit(...), or set_params(time_limit=60) before fit
"""

from __future__ import annotations

import difflib
import inspect
from typing import Any, Callable

# other tools' names -> mmfuse's setting, or None with why mmfuse has none
OTHER_NAMES: dict[str, tuple[str | None, str]] = {
    "presets": ("preset", "AutoGluon's presets"),
    "problem_type": ("task", "AutoGluon's problem_type"),
    "tuning_data": ("valid", "AutoGluon's tuning_data"),
    "hyperparameters": ("config", "AutoGluon's hyperparameters: a YAML file or dict merged over the preset"),
    "num_cpus": ("threads", "AutoGluon's num_cpus"),
    "random_state": ("seed", "scikit-learn's random_state"),
    "sample_weight": (None, "row weights are for a Predictor's labelled rows; a retrieval pair counts once"),
}


def misplaced(owner: type, call: Callable, given: dict[str, Any]) -> str:
    """Why ``owner``'s ``call`` (``__init__`` or ``fit``) cannot take the keyword arguments ``given``: one line."""
    settings = _parameters(owner.__init__)
    accepted = _parameters(call)
    where = owner.__name__ if call.__name__ == "__init__" else f"{call.__name__}()"
    name, value = next(iter(given.items()))
    if name in settings and name not in accepted:
        return (f"{name} is a setting of {owner.__name__}, not an argument of {where}: "
                f"{owner.__name__}(..., {name}={value!r}).fit(...), or set_params({name}={value!r}) before fit")
    if name in OTHER_NAMES:
        ours, why = OTHER_NAMES[name]
        if ours is None:
            return f"{owner.__name__} has no {name}: {why}"
        if ours in accepted:
            return f"{where} takes {ours}= ({why}): {ours}={value!r}"
        return f"{owner.__name__} takes {ours}= in its constructor ({why}): {owner.__name__}(..., {ours}={value!r})"
    close = difflib.get_close_matches(name, accepted + settings, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"{where} got an unexpected keyword argument {name!r}{hint}"


def _parameters(call: Callable) -> list[str]:
    return [n for n, p in inspect.signature(call).parameters.items()
            if n != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]


class KeywordSettings:
    """Constructor settings by keyword only, each checked by name when given (a misplaced one named in one line:
    ``misplaced``), kept as given (``_keep_settings``)."""

    def __new__(cls, *args: Any, **kwargs: Any) -> "KeywordSettings":
        settings = inspect.signature(cls.__init__).parameters
        if args:  # name the keywords the positional values were probably meant for
            names = [n for n in settings if n != "self"]
            given = ", ".join(f"{n}={a!r}" for n, a in zip(names, args))
            raise TypeError(f"{cls.__name__} takes keyword arguments only: {cls.__name__}({given}, ...)")
        unknown = {k: v for k, v in kwargs.items() if k not in settings}
        if unknown:
            raise TypeError(misplaced(cls, cls.__init__, unknown))
        return super().__new__(cls)

    def _keep_settings(self, given: dict[str, Any]) -> None:
        """Store each constructor argument (``locals()`` of a subclass ``__init__``) under its own name, unchanged."""
        for name, value in given.items():
            if name not in ("self", "__class__"):
                setattr(self, name, value)
