"""Station-nights and their RMS clear-sky intervals.

Which nights the archive holds and how clear they were (:mod:`.detected_folders`,
:mod:`.nights_table`), the interval files on disk (:mod:`.interval_files`), which timelapses
belong to the nights wanted (:mod:`.timelapse_choice`, :mod:`.target_lists`), and a frame's
label from its own station-night's intervals (:mod:`.label_rules` pure, :mod:`.label_table`
the labels CSV). Reading the archive's folders by name: :mod:`.archive_listing`.
"""
