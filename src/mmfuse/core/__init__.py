"""The contracts every layer above shares: Processor (+ Problem, Transformed), ColumnInfo, Modality, and the
Encoder / Fusion / Task protocols. Nothing here imports a concrete modality, network or estimator.

The submodules are imported one by one (``from mmfuse.core.columns import ColumnInfo``): ``core.columns`` and
``core.modality`` do not load torch, so the data layer can use them without it.
"""
