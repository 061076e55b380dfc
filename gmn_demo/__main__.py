"""``python -m gmn_demo``: the offline demo (see :mod:`gmn_demo.demo`)."""

from gmn_demo.demo import main

if __name__ == "__main__":
    main()
