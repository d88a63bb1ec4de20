"""The grader (``grading/run.py``): scores students' submissions on the hidden ``heldout`` split.

Not written yet: it arrives with the homework-submission issue. The ``heldout`` splits it will use
already ship in ``data/`` and are refused to labs by ``utils.data.datasets.load_split``.
"""
