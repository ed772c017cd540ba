"""Documents produced for a mail: reply drafts and acknowledgements of receipt, with their versions."""
