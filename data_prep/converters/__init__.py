"""Night-to-day converters used by ``data_prep.night_to_day``. ``converter=gemini``: settings
and the API key (:mod:`.gemini_settings`), one image through the Gemini API (:mod:`.gemini`,
its answers read by :mod:`.gemini_answers`, its requests paced by :mod:`.rate_limit`), a whole
run (:mod:`.gemini_run`). ``converter=local``: the offline day-styling
(:mod:`.local_day_style`) and its run (:mod:`.local_run`). Both: the images on disk
(:mod:`.night_images`) and the manifest with what to convert next
(:mod:`.night_to_day_manifest`)."""
