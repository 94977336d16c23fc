"""Tables in, tensors out: reading, column detection, per-column preprocessing, batching."""
