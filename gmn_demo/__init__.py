"""The offline demo (``make demo`` = ``python -m gmn_demo``): it drives the user-facing
commands (data prep, train, analyze, predict) on a synthetic archive and scores the daytime
predictions. It sits above both packages; neither imports it."""
