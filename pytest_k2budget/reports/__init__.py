"""Reports read verdicts and windows; they compute nothing the criteria did not."""
