"""Night-to-day converters used by ``data_prep.night_to_day``: the Gemini client
(:mod:`.gemini`), the offline day-styling (:mod:`.local_day_style`), request pacing and
retry timing (:mod:`.rate_limit`) and the manifest (:mod:`.manifest`)."""
