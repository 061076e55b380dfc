"""Capture sessions (nights) and their RMS clear-sky intervals.

Which sessions the archive holds (:mod:`.night_listing`) and how clear they were
(:mod:`.nights_table`: ``nights.csv``, ``good_weather_dates.json``), the interval files on disk
(:mod:`.interval_files`), a data dir's sessions with their intervals (:mod:`.session_index`),
which timelapses belong to the sessions wanted (:mod:`.timelapse_choice`,
:mod:`.target_lists`), and a frame's label from its own session's intervals
(:mod:`.label_rules` pure, :mod:`.label_table` the labels CSV). Reading the archive's folders
by name: :mod:`.archive_listing`.
"""
