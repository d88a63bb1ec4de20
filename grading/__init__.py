"""The grader (``grading/run.py``): validates students' submissions (``validate``, ``peft_types``),
scores each lab's artifact on the held-out split (``artifacts``, ``capstone``) with the lab's
rubric (``rubric``), one worker process at a time (``worker``), and writes the gradebook and
feedback (``outputs``). The ``heldout`` splits ship in ``data/`` and are refused to labs by
``utils.data.datasets.load_split``."""
