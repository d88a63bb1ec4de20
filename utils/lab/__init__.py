"""What a lab notebook shows and hands in: task checks and their outcomes (``checks``,
``task_checks``), what checks compare with and what stands in for an unfinished task
(``expected``), plots, diagrams, explorers (widgets), result files, the PDF report and the
submission zip."""
