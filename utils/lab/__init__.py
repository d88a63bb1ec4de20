"""What a lab notebook shows and hands in: task checks, plots, result files, submissions."""
