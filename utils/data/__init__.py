"""What the labs read: the bundled datasets and their generators, Lab 05's corpora, prompt formats,
and batching."""
