"""The base layer both packages may import: GMN names and formats (:mod:`.formats`) and
atomic file writes (:mod:`.atomic`). It imports neither ``data_prep`` nor ``gmn_weather`` and
nothing heavy (no torch, no network clients), so every layer can stand on it."""
