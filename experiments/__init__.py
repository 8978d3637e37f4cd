"""The shipped experiment files: NNI experiment YAMLs (`nnictl create --config ...`) and
study-of-studies plans (`nnisuite repeat`). Data only; `nnisuite run --list` names them, and
`nnisuite run NAME` finds NAME.yaml here (nnisuite.shipped)."""
