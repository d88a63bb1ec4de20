"""What the labs read: JSON Lines, read one way (``jsonl``), the bundled datasets and their
generators (``datasets``, ``generators``), a learner's own data (``own_data``), Lab 05's corpora
(``corpus``), prompt formats (``prompting``), chat files, their validator and the chat template
(``chat_format``), token statistics (``token_stats``), cleaning (``cleaning``) and batching
(``batching``)."""
