"""A modality plugin: ``colour`` cells such as ``#ff8800``, read as three numbers in [0, 1]."""

import re

import torch
from torch import nn

from mmfuse.core.modality import Cell, Modality, nonempty_strings
from mmfuse.core.processor import EMPTY, UNREADABLE, Problem, Processor, Transformed, is_empty
from mmfuse.registry import ENCODERS, MODALITIES, PROCESSORS

HEX = re.compile(r"^#[0-9a-fA-F]{6}$")


def looks_like_colours(values):
    """Detection: a reason when most of a column's first values are #rrggbb, else None."""
    strings = nonempty_strings(values).head(200)
    return "#rrggbb colours" if len(strings) and strings.str.match(HEX).mean() >= 0.8 else None


class ColourProcessor(Processor):
    """#rrggbb -> (N, 3) floats; anything else is unreadable. Settings are __init__ arguments; what fit learns goes
    in attributes ending in _ (saved as JSON)."""

    kind, modality = "colour", "colour"

    def __init__(self, column: str):
        self.column = column

    def fit(self, values, root, progress=None):
        self.seen_ = int(sum(not is_empty(v) for v in values))
        return self

    def transform(self, values, root, progress=None):
        out, present, problems = torch.zeros(len(values), 3), torch.ones(len(values), dtype=torch.bool), []
        for i, v in enumerate(values):
            if is_empty(v) or not HEX.match(str(v)):
                present[i] = False
                problems.append(Problem(i, self.column, EMPTY if is_empty(v) else UNREADABLE, f"not a colour: {v!r}"))
            else:
                out[i] = torch.tensor([int(str(v)[k:k + 2], 16) / 255 for k in (1, 3, 5)])
        return Transformed(out, present, problems)

    def corruptions(self):  # for mmfuse evaluate --robustness
        return {"noise": lambda x, level, gen: x + level * torch.randn(x.shape, generator=gen)}


class ColourEncoder(nn.Module):
    """(B, 3) -> (B, width): an encoder is any nn.Module with an output_dim."""

    def __init__(self, width: int = 16):
        super().__init__()
        self.net, self.output_dim = nn.Sequential(nn.Linear(3, width), nn.GELU()), width

    def forward(self, x):
        return self.net(x)


PROCESSORS.add("colour", ColourProcessor)
ENCODERS.add("colour_mlp", ColourEncoder, modality="colour")
MODALITIES.add("colour", Modality("colour", input="colour", processor="colour", default_encoder="colour_mlp",
                                  detect=looks_like_colours, priority=25,
                                  cell=Cell(widget="text", hint="#ff8800")))  # served inline, a text field on the page
