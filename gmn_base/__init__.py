"""The base layer both packages may import: GMN names and formats (one module per subject:
:mod:`.station_time`, :mod:`.night_folders`, :mod:`.sessions`, :mod:`.image_names`, ...),
atomic file writes (:mod:`.atomic`), locks between concurrent jobs (:mod:`.locks`, with the
writer identity of :mod:`.process_identity`) and secret redaction
(:mod:`.redaction`). It imports neither ``data_prep`` nor ``gmn_weather`` and nothing heavy
(no torch, no network clients), so every layer can stand on it."""
