"""The synthetic GMN archive: a miniature server tree for the offline demo and the tests.

The step is ``python -m data_prep.synthetic`` (:mod:`.__main__`). The writer
(:mod:`.archive`) follows a plan decided up front (:mod:`.archive_plan`, from
:mod:`.settings`); each camera's sky (:mod:`.sky_scene`) and each night's weather
(:mod:`.clouds`) decide what a frame truly shows and the labels RMS's rule
(:mod:`.rms_intervals`) gives it (:mod:`.truth`); :mod:`.sky_render` draws the frames, and
:mod:`.contact_sheet` shows a spread of them.
"""
