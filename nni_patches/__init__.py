"""NNI 3.0 fixed from the outside, every patch in one place and named for what it fixes (the
installed nni package is never changed; docs/nni-workarounds.md says why each exists):

    tuners.py        tuner subclasses: Hyperband / BOHB budgets, GP with scipy >= 1.11
    dispatcher.py    the tuner dispatcher as nnisuite's managers start it (ordering, fast stop)
    interpreter.py   the Python NNI's manager is told to use (its version query answered)
    node_preload.js  the manager's Node preload: loopback only, remote-host loss logged
    binding.py       which addresses the manager listens on, and the preload's environment
    lazy_import.py   `import nni` without scipy.stats / pandas until used
"""
