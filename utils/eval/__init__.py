"""How a model is measured: one metric function per task type (``metrics``), the capstone's task
types (``task_eval``), chrF and ROUGE-L (``text_metrics``), batched decoding (``decoding``),
in-context learning (``icl``), the label-word task of Labs 07–09 (``label_task``), paired
bootstrap intervals (``compare``), general ability through EleutherAI's LM Evaluation Harness
(``harness``) and a model as a pairwise judge (``judge``). Below ``utils.train``: training loops
measure as they go."""
