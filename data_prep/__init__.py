"""Data preparation: from the GMN archive to labelled, day-styled images.

Each step is a thin module run as ``python -m data_prep.<step>`` (``find``, ``filter_cloudy``,
``plan``, ``download``, ``extract``, ``label``, ``night_to_day``, ``review``, ``synthetic``);
``python -m data_prep`` runs them in order. Every step returns a :class:`~data_prep.summary.
StepSummary` through :func:`~data_prep.summary.run_step`. The library they call is grouped by
subject: :mod:`.remote` (the archive over SFTP or a local folder, resumable fetches),
:mod:`.nights` (capture sessions, interval files, timelapse choice, label rules),
:mod:`.video` (frame selection, decoding, PNG writing, timelapse encoding),
:mod:`.converters` (night-to-day with Gemini or offline) and :mod:`.synthetic` (the synthetic
archive). Imports only ``gmn_base`` from the project.
"""
