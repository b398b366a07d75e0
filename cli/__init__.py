"""The `campaign` command line: every operator command, its output in Chinese or English, and its exit codes."""
