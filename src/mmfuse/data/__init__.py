"""Tables: reading and splitting (``table``), modality detection through the registered plugins (``detect``), and
stored splits served as prepared batches (``dataset``). Never imports ``nn``, ``modalities`` or ``estimators``;
``table`` and ``detect`` do not load torch."""
