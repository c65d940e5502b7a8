"""Loss functions of the self-supervised rules, apart from their trainers (the solo-learn pattern).

One module per method, each holding only pure functions of tensors (shapes in the docstrings):
:mod:`ratenets.losses.lpl` (LPL's predictive, Hebbian and decorrelation terms), :mod:`ratenets.losses.clapp`
(the CLAPP hinge on scored pairs; CLAPP-s and Hinge-CPC use it too) and :mod:`ratenets.losses.dpc` (dense
InfoNCE). The rule modules in :mod:`ratenets.rules` import them and re-export the names they always had.
"""
