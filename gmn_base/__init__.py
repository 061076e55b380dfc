"""The base layer both packages may import: GMN names and formats (:mod:`.formats`),
atomic file writes (:mod:`.atomic`) and secret redaction (:mod:`.redaction`). It imports
neither ``data_prep`` nor ``gmn_weather`` and nothing heavy (no torch, no network clients),
so every layer can stand on it."""
