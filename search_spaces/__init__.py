"""The shipped search spaces, in NNI's format ({name: {_type, _value}}): data only, named by the
experiment files beside this folder (searchSpaceFile: ../search_spaces/...)."""
