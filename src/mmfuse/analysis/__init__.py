"""What a fitted model does and how it compares: input contributions and corruption curves (``robustness``), the
fusion sweep (``sweep``). Uses the estimators' public API only."""
